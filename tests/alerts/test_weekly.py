"""The weekly rules on a seeded city: exactly the expected findings, with their evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from alerts import rulebook as rules_file
from alerts.daytypes import DayType
from alerts.weekly import run_week
from meterhub.settings import Settings
from tests.alerts.city import WEEK, FirmPlan, Profile, noise, normal_day, seed_city

pytestmark = pytest.mark.integration

TOWN = "上溪"
WED = WEEK + timedelta(days=2)


def changed(
    firm_seed: int, change: Callable[[date, str, list[float | None]], list[float | None]]
) -> Profile:
    base = normal_day(firm_seed)

    def hours(day: date, day_type: str, offset: int) -> list[float | None]:
        values = base(day, day_type, offset)
        return change(day, day_type, values) if 0 <= offset < 7 else values

    return hours


def workday(day_type: str) -> bool:
    return day_type == DayType.WORKDAY.value


def stopped(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    return [10.0] * 24


def cut(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    if not workday(day_type):
        return values
    return [100.0 if 8 <= h < 11 else 10.0 for h in range(24)]


def surge(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    if day != WED:
        return values
    return [250.0 if 8 <= h < 18 else 10.0 for h in range(24)]


def idle(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    if not workday(day_type):
        return values
    return [60.0 if (h >= 22 or h < 6) else v for h, v in enumerate(values)]


def half_day(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    return [None if (day == WED and h >= 12) else v for h, v in enumerate(values)]


def dark_last_days(day: date, day_type: str, values: list[float | None]) -> list[float | None]:
    return [None] * 24 if day >= WEEK + timedelta(days=4) else values


def saturday_shift(seed: int) -> Profile:
    """Works Saturdays like weekdays; Sunday is base load."""

    def hours(day: date, day_type: str, _: int) -> list[float | None]:
        saturday = day.isoweekday() == 6 and day_type != DayType.HOLIDAY.value
        producing = day_type == DayType.WORKDAY.value or saturday
        scale = 1 + 0.01 * noise(seed, day.toordinal())
        return [(100.0 if producing and 8 <= h < 18 else 10.0) * scale for h in range(24)]

    return hours


def plans() -> list[FirmPlan]:
    return [
        *(FirmPlan(f"normal{i}") for i in range(6)),
        # The 8 weeks before WEEK hold an adjusted working Saturday (10 October): one Sunday
        # more than Saturdays. Saturdays are compared with Saturdays: no surge.
        FirmPlan("saturdays", daily=saturday_shift(300)),
        FirmPlan("stoppage", daily=changed(101, stopped)),
        FirmPlan("cutback", daily=changed(102, cut)),
        FirmPlan("surge", daily=changed(103, surge)),
        FirmPlan("idle", daily=changed(104, idle)),
        FirmPlan("incomplete", daily=changed(105, half_day)),
        FirmPlan("offline", daily=changed(106, dark_last_days), offline_hours=72),
        FirmPlan("events", events=2),
        FirmPlan("excess", kwh_factor=lambda m: 1.3 if m == 0 else 1.0),
        FirmPlan("drift", kwh_factor=lambda m: 1.025 if m >= -8 else 1.0),
        FirmPlan("intensive", scale=3.0),
        FirmPlan("rising", industry="C3011", kwh_factor=lambda m: 1.2 if m >= -11 else 1.0),
        FirmPlan("twohigh", industry="C2614", scale=30.0, project_year=2019),
        FirmPlan("listed", lists=[("unrectified_d", date(2026, 1, 1))]),
        FirmPlan("dclass", classes=[(2024, "D"), (2025, "D")]),
        FirmPlan("dclass_once", classes=[(2023, "D"), (2025, "D")]),
    ]


EXPECTED = {
    "stoppage": {"suspected_stoppage"},
    "cutback": {"suspected_cutback"},
    "surge": {"energy_surge"},
    "idle": {"idle_load"},
    "incomplete": {"data_incomplete"},
    "offline": {"terminal_offline", "data_incomplete"},
    "events": {"meter_events"},
    "excess": {"baseline_excess"},
    "drift": {"baseline_drift"},
    "intensive": {"intensity_peers"},
    # A 20 % jump a year ago drifts above the old baseline as well.
    "rising": {"intensity_rising", "baseline_drift"},
    "twohigh": {"two_high"},
    "listed": {"monitored_list"},
    "dclass": {"d_class_two_years"},
}


@pytest.fixture(scope="module")
async def city(settings: Settings) -> dict[str, int]:
    db = await asyncpg.connect(settings.dsn())
    try:
        return await seed_city(db, plans(), town=TOWN)
    finally:
        await db.close()


async def findings(db: asyncpg.Connection, ids: dict[str, int]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in ids.items()}
    rows = await db.fetch(
        "SELECT firm_id, rule, evidence, status, first_week, last_week, town FROM findings "
        "WHERE firm_id = ANY($1::bigint[])",
        list(ids.values()),
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out.setdefault(names[r["firm_id"]], {})[r["rule"]] = {
            **dict(r),
            "evidence": json.loads(r["evidence"]),
        }
    return out


async def test_exactly_the_expected_findings_with_their_evidence(
    settings: Settings, city: dict[str, int], db: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        summary = await run_week(pool, week=WEEK, settings=settings, rulebook=rules_file.load())
    finally:
        await pool.close()
    assert summary.firms >= len(city)
    got = await findings(db, city)
    assert {k: set(v) for k, v in got.items()} == EXPECTED
    stop = got["stoppage"]["suspected_stoppage"]["evidence"]
    assert stop["days"] >= 5 and stop["last_day"] >= str(WEEK)
    assert 35 < stop["threshold_kwh_per_h"] < 40  # 10 + 0.3 x (100 - 10), +-1 %
    cutback = got["cutback"]["suspected_cutback"]["evidence"]
    assert 43 < cutback["ratio_pct"] < 46  # 510 / 1140 kWh per working day
    surged = got["surge"]["energy_surge"]["evidence"]
    assert surged["day"] == str(WED) and 2.2 < surged["ratio"] < 2.4
    excess = got["excess"]["baseline_excess"]["evidence"]
    assert excess["month"] == "2026-10" and excess["r2"] >= 0.5
    assert excess["excess_kwh"] == pytest.approx(excess["actual"] - excess["predicted"], abs=0.2)
    assert excess["excess_kwh"] > 0.25 * excess["predicted"]
    assert excess["excess_tce"] == pytest.approx(excess["excess_kwh"] * 0.1229 / 1000, abs=1e-3)
    peers = got["intensive"]["intensity_peers"]["evidence"]
    assert peers["sector"] == "C29" and 2.8 < peers["ratio"] < 3.2
    two = got["twohigh"]["two_high"]["evidence"]
    assert two["threshold"] == 1000 and two["tce"] >= 1000
    assert got["listed"]["monitored_list"]["evidence"]["lists"] == "D类未整改"
    assert got["dclass"]["d_class_two_years"]["evidence"]["years"] == "2024、2025"
    assert got["incomplete"]["data_incomplete"]["evidence"]["bad_days"] == 1
    assert all(
        f["town"] == TOWN and f["status"] == "open" for v in got.values() for f in v.values()
    )


async def test_rerunning_a_week_changes_nothing(
    settings: Settings, city: dict[str, int], db: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        book = rules_file.load()
        await run_week(pool, week=WEEK, settings=settings, rulebook=book)
        before = await db.fetch(
            "SELECT id, firm_id, rule, evidence, weeks, status FROM findings "
            "WHERE firm_id = ANY($1::bigint[]) ORDER BY id",
            list(city.values()),
        )
        await run_week(pool, week=WEEK, settings=settings, rulebook=book)
        after = await db.fetch(
            "SELECT id, firm_id, rule, evidence, weeks, status FROM findings "
            "WHERE firm_id = ANY($1::bigint[]) ORDER BY id",
            list(city.values()),
        )
    finally:
        await pool.close()
    assert [dict(r) for r in before] == [dict(r) for r in after]
    assert before


async def test_findings_close_after_their_clean_weeks(
    settings: Settings, city: dict[str, int], db: asyncpg.Connection
) -> None:
    """Stoppage closes after 2 clean weeks, a listed firm stays reported every week."""
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    book = rules_file.load()
    try:
        await run_week(pool, week=WEEK, settings=settings, rulebook=book)
        await run_week(pool, week=WEEK + timedelta(days=7), settings=settings, rulebook=book)
        one_week_on = await findings(db, city)
        await run_week(pool, week=WEEK + timedelta(days=14), settings=settings, rulebook=book)
        two_weeks_on = await findings(db, city)
    finally:
        await pool.close()
    assert one_week_on["stoppage"]["suspected_stoppage"]["status"] == "open"
    closed = two_weeks_on["stoppage"]["suspected_stoppage"]
    assert closed["status"] == "closed" and closed["last_week"] == WEEK
    listed = two_weeks_on["listed"]["monitored_list"]
    assert listed["status"] == "open" and listed["last_week"] == WEEK + timedelta(days=14)
    # With no data at all after WEEK, every firm's days are incomplete, never "stopped".
    assert all(
        "suspected_stoppage" not in v or v["suspected_stoppage"]["status"] == "closed"
        for v in two_weeks_on.values()
    )


def shut_for_spring_festival(firm_seed: int) -> Profile:
    base = normal_day(firm_seed)
    first, last = date(2026, 2, 7), date(2026, 3, 8)

    def hours(day: date, day_type: str, offset: int) -> list[float | None]:
        if first <= day <= last:
            return [10.0] * 24
        return base(day, day_type, offset)

    return hours


@pytest.mark.parametrize("week", [date(2026, 2, 16), date(2026, 3, 9)])
async def test_the_spring_festival_shutdown_does_not_flood_the_findings(
    settings: Settings, db: asyncpg.Connection, week: date
) -> None:
    ids = await seed_city(
        db,
        [
            FirmPlan(f"shut{i}", industry="C1819", daily=shut_for_spring_festival(200 + i))
            for i in range(3)
        ],
        town="佛堂",
        week=week,
    )
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        await run_week(pool, week=week, settings=settings, rulebook=rules_file.load())
    finally:
        await pool.close()
    got = await findings(db, ids)
    load_rules = {"suspected_stoppage", "suspected_cutback", "energy_surge", "idle_load"}
    assert not {rule for v in got.values() for rule in v} & load_rules, got

"""A seeded city for the analytics: firms built to trigger each rule and firms built to
trigger none, written at the level the analytics read (daily features, monthly rollups,
output figures, lists, projects, terminals), for one judged week."""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
import polars as pl

from alerts import rulebook
from alerts.daytypes import DayType, day_types
from alerts.weekly import run_week
from ingest.town_rollups import refresh_town_rollups_for
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from tests.support import credit_code

WEEK = date(2026, 11, 23)  # the judged week (Monday); the monthly rules judge October
FIRST_DAY = WEEK - timedelta(days=84)
FIRST_MONTH = date(2024, 10, 1)
JUDGED_MONTH = date(2026, 10, 1)
INSTALLED = datetime(2024, 1, 1, tzinfo=LOCAL_TZ)
Profile = Callable[[date, str, int], list[float | None]]


def noise(seed: int, step: int) -> float:
    """A deterministic wobble in [-1, 1]."""
    return math.sin(seed * 7.1 + step * 1.37)


def normal_day(seed: int) -> Profile:
    """100 kWh/h from 08:00 to 18:00 on working days, 10 kWh/h otherwise, +-1 %."""

    def hours(day: date, day_type: str, _: int) -> list[float | None]:
        scale = 1 + 0.01 * noise(seed, day.toordinal())
        producing = day_type == DayType.WORKDAY.value
        return [(100.0 if producing and 8 <= h < 18 else 10.0) * scale for h in range(24)]

    return hours


def months(first: date, last: date) -> list[date]:
    out, m = [], first
    while m <= last:
        out.append(m)
        m = date(m.year + m.month // 12, m.month % 12 + 1, 1)
    return out


def month_no(m: date) -> int:
    return (m.year - JUDGED_MONTH.year) * 12 + m.month - JUDGED_MONTH.month


@dataclass
class FirmPlan:
    key: str
    industry: str = "C2921"
    daily: Profile | None = None  # None: normal_day
    kwh_factor: Callable[[int], float] = lambda _: 1.0  # by month number (0 = judged month)
    scale: float = 1.0
    lists: list[tuple[str, date]] = field(default_factory=list)
    classes: list[tuple[int, str]] = field(default_factory=list)
    project_year: int | None = None
    offline_hours: float | None = None
    events: int = 0

    @property
    def seed(self) -> int:
        """The plan's own wobble seed: its data never depends on database ids."""
        return zlib.crc32(self.key.encode()) % 10_000


def output_value(seed: int, m: date) -> float:
    return 15e6 + 5e6 * math.sin(m.toordinal() / 30.4 * 0.9 + seed)


def monthly_kwh(plan: FirmPlan, m: date) -> float:
    base = (1_000 + 0.002 * output_value(plan.seed, m)) * plan.scale
    return base * plan.kwh_factor(month_no(m)) * (1 + 0.01 * noise(plan.seed, m.toordinal()))


async def _firm(db: asyncpg.Connection, plan: FirmPlan, town: str) -> tuple[int, int]:
    firm = await db.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, $3, $4, 20, true) RETURNING id",
        credit_code(uuid.uuid4().int % 10_000_000),
        f"分析测试 {plan.key} {uuid.uuid4().hex[:4]}",
        plan.industry,
        town,
    )
    meter = await db.fetchval(
        "INSERT INTO meters (firm_id, code, utility, protocol, installed_at) "
        "VALUES ($1, $2, 'electricity', 'grid-feed', $3) RETURNING id",
        firm,
        f"AN-{uuid.uuid4().hex[:10]}",
        INSTALLED,
    )
    return firm, meter


async def _sum_towns(db: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The town rollups of firm rollups written here, as the interval worker keeps them."""
    buckets: dict[tuple[str, int, str], list[datetime]] = {}
    for granularity, firm, utility, bucket, *_ in rows:
        buckets.setdefault((granularity, firm, utility), []).append(bucket)
    async with db.transaction():
        await refresh_town_rollups_for(
            db,
            [
                (g, firm, u, min(b), max(b) + timedelta(microseconds=1))
                for (g, firm, u), b in buckets.items()
            ],
        )


async def seed_city(
    db: asyncpg.Connection, plans: list[FirmPlan], *, town: str, week: date = WEEK
) -> dict[str, int]:
    """Write every plan's data; returns firm ids by plan key."""
    holidays = pl.DataFrame(
        [dict(r) for r in await db.fetch("SELECT day, kind, name FROM holidays")],
        schema={"day": pl.Date, "kind": pl.String, "name": pl.String},
    )
    first_day = week - timedelta(days=84)
    types = day_types(first_day, week + timedelta(days=7), holidays)
    ids: dict[str, int] = {}
    features, month_rows, month_features, figures = [], [], [], []
    for plan in plans:
        firm, meter = await _firm(db, plan, town)
        ids[plan.key] = firm
        profile = plan.daily or normal_day(plan.seed)
        for day, day_type in types.select("day", "day_type").iter_rows():
            hourly = profile(day, day_type, (day - week).days)
            if all(h is None for h in hourly):
                continue
            present = sum(h is not None for h in hourly)
            energy = sum(h for h in hourly if h is not None)
            start_of_day = datetime.combine(day, time(), LOCAL_TZ)
            month_rows.append(("day", firm, "electricity", start_of_day, energy, 0.0, 1))
            features.append(
                (
                    firm,
                    day,
                    energy,
                    0.0,
                    present * 4,
                    96,
                    [math.nan if h is None else h for h in hourly],
                )
            )
        for m in months(FIRST_MONTH, JUDGED_MONTH):
            start = datetime.combine(m, time(), LOCAL_TZ)
            days = (date(m.year + m.month // 12, m.month % 12 + 1, 1) - m).days
            kwh = monthly_kwh(plan, m)
            month_rows.append(("month", firm, "electricity", start, kwh, 0.0, 1))
            month_features.append((firm, m, kwh, 0.0, days * 96, days * 96))
            value = output_value(plan.seed, m)
            figures.append((firm, m, value, value * 0.25, value * 0.03, 100, value * 0.02, value))
        for name, since in plan.lists:
            await db.execute(
                "INSERT INTO firm_lists (firm_id, list, since, source) VALUES ($1, $2, $3, 't')",
                firm,
                name,
                since,
            )
        for year, klass in plan.classes:
            await db.execute(
                "INSERT INTO evaluations (firm_id, year, source, cohort, class) "
                "VALUES ($1, $2, 'official', 'above_scale', $3)",
                firm,
                year,
                klass,
            )
        if plan.project_year is not None:
            await db.execute(
                "INSERT INTO firm_projects (firm_id, name, commissioned_year) "
                "VALUES ($1, '二期扩建', $2)",
                firm,
                plan.project_year,
            )
        week_end = datetime.combine(week + timedelta(days=7), time(), LOCAL_TZ)
        if plan.offline_hours is not None:
            await db.execute(
                "INSERT INTO terminal_status (meter_id, online, last_success_at, "
                "last_attempt_at) VALUES ($1, false, $2, $3)",
                meter,
                week_end - timedelta(hours=plan.offline_hours),
                week_end,
            )
        for i in range(plan.events):
            at = datetime.combine(week + timedelta(days=i), time(10), LOCAL_TZ)
            await db.execute(
                'INSERT INTO interval_events (meter_id, kind, start, "end") '
                "VALUES ($1, 'reset', $2, $3)",
                meter,
                at,
                at + timedelta(minutes=15),
            )
    await db.copy_records_to_table(
        "firm_day_features",
        records=features,
        columns=["firm_id", "day", "energy", "estimated", "intervals", "expected", "hourly"],
    )
    await db.copy_records_to_table(
        "firm_rollups",
        records=month_rows,
        columns=["granularity", "firm_id", "utility", "bucket", "energy", "estimated", "meters"],
    )
    await _sum_towns(db, month_rows)
    await db.copy_records_to_table(
        "firm_month_features",
        records=month_features,
        columns=["firm_id", "month", "kwh", "estimated", "intervals", "expected"],
    )
    await db.copy_records_to_table(
        "output_figures",
        records=figures,
        columns=[
            "firm_id",
            "month",
            "output_value",
            "value_added",
            "tax_paid",
            "employees",
            "rnd_spend",
            "main_revenue",
        ],
    )
    return ids


async def seed_and_judge(
    settings: Settings, plans_by_town: dict[str, list[FirmPlan]], *, week: date = WEEK
) -> dict[str, int]:
    """Seed each town's plans and run the weekly analytics for ``week``; firm ids by key."""
    db = await asyncpg.connect(settings.dsn())
    ids: dict[str, int] = {}
    try:
        for town, plans in plans_by_town.items():
            ids |= await seed_city(db, plans, town=town, week=week)
    finally:
        await db.close()
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        await run_week(pool, week=week, settings=settings, rulebook=rulebook.load())
    finally:
        await pool.close()
    return ids

"""A small planted city through the real paths: registered, two years of history written as
rollups with its output figures, six weeks of 15-minute readings through the ingest sink
and the interval worker, then `meterhub alerts run`'s weekly job: each planted firm gets
exactly the findings it was built for, the plain firms none."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from alerts import rulebook
from alerts.weekly import run_week
from collectors.scheduler import ScheduleOptions
from collectors.terminals import TerminalBook
from ingest.interval_worker import derive_pending
from ingest.registry import MeterRegistry
from ingest.sink import IngestSink
from meterhub.migrate import migrate
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from simulators.backfill import backfill_polled
from simulators.city import generate_city
from simulators.config import CityConfig
from simulators.fleet import CityFleet
from simulators.history import fast_forward
from simulators.registry import register_city
from simulators.schedule import history_ticks

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 12, tzinfo=LOCAL_TZ)  # protocol-path history from here
WEEK = date(2026, 11, 16)  # the planted and judged week
END = START + timedelta(weeks=6)
# Enough firms of one division (C17) for the intensity rule's peer group.
INDUSTRIES = ("C1761", "C1763", "C1820", "C2438", "C2682")


@dataclass
class Judged:
    city: CityConfig
    hits: dict[str, dict[str, dict[str, object]]]  # credit code -> rule -> evidence
    offline: dict[str, object]
    october: list[dict[str, object]]  # per meter: the month's rollup against its days


@pytest.fixture(scope="module")
async def judged(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Judged]:
    admin = await asyncpg.connect(base_settings.dsn())
    name = f"meterhub_planted_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(base_settings.dsn())._replace(path=f"/{name}"))
    spool = Path(tmp_path_factory.mktemp("spool"))
    settings = base_settings.model_copy(
        update={"database_url": SecretStr(dsn), "spool_dir": spool, "batch_max_age": 0.02}
    )
    try:
        yield await _judge(settings)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _judge(settings: Settings) -> Judged:
    city = generate_city(
        firms=18,
        seed=5,
        start=START,
        industries=INDUSTRIES,
        history_months=25,
        plant_week=WEEK,
        fault_rate=0,
    )
    fleet = CityFleet(city)
    conn = await asyncpg.connect(settings.dsn())
    try:
        await migrate(conn, settings.migrations_dir)
        ids = (await register_city(conn, city, as_of=END)).meter_ids
        await fast_forward(conn, city, fleet.meters, months=24, until=START, now=END)
        ticks = history_ticks(until=END, span=END - START, interval=timedelta(minutes=15))
        options = ScheduleOptions()
        book = TerminalBook(
            offline_after=options.offline_after, drift_tolerance=options.drift_tolerance
        )
        async with IngestSink(settings) as sink:
            await backfill_polled(
                sink, fleet, ticks, meter_ids=ids, meters=fleet.meters, terminals=book
            )
        await book.flush(conn)
        registry = MeterRegistry()
        while (await derive_pending(conn, registry)).marks:
            pass
        pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            await run_week(pool, week=WEEK, settings=settings, rulebook=rulebook.load(None))
        finally:
            await pool.close()
        rows = await conn.fetch(
            "SELECT f.credit_code, h.rule, h.evidence FROM rule_hits h "
            "JOIN firms f ON f.id = h.firm_id WHERE h.week = $1",
            WEEK,
        )
        hits: dict[str, dict[str, dict[str, object]]] = {}
        for r in rows:
            hits.setdefault(r["credit_code"], {})[r["rule"]] = json.loads(r["evidence"])
        status = await conn.fetchrow(
            "SELECT t.online, t.last_success_at FROM terminal_status t "
            "JOIN meters m ON m.id = t.meter_id JOIN firms f ON f.id = m.firm_id "
            "WHERE NOT t.online"
        )
        october = await conn.fetch(
            "SELECT m.meter_id, m.energy, m.intervals, sum(d.energy) AS days, "
            "sum(d.intervals) AS day_intervals, count(d.*) AS n FROM meter_rollups m "
            "JOIN meter_rollups d ON d.meter_id = m.meter_id AND d.granularity = 'day' "
            "AND d.bucket >= m.bucket AND d.bucket < $2 "
            "WHERE m.granularity = 'month' AND m.bucket = $1 GROUP BY 1, 2, 3",
            datetime(2026, 10, 1, tzinfo=LOCAL_TZ),
            datetime(2026, 11, 1, tzinfo=LOCAL_TZ),
        )
        return Judged(city, hits, dict(status) if status else {}, [dict(r) for r in october])
    finally:
        await conn.close()


def test_each_planted_rule_fires_for_its_firm(judged: Judged) -> None:
    planted = {rule for firm in judged.city.firms for rule in firm.expect}
    assert {"suspected_stoppage", "suspected_cutback", "energy_surge", "idle_load"} <= planted
    assert {"baseline_excess", "intensity_peers", "two_high", "terminal_offline"} <= planted
    assert {"monitored_list", "d_class_two_years"} <= planted
    for firm in judged.city.firms:
        if firm.expect:
            assert set(judged.hits.get(firm.credit_code, {})) == set(firm.expect), firm.name


def test_plain_firms_get_no_finding(judged: Judged) -> None:
    plain = [f for f in judged.city.firms if not f.expect]
    assert len(plain) >= 5
    assert {
        f.name: judged.hits.get(f.credit_code) for f in plain if f.credit_code in judged.hits
    } == {}


def test_the_evidence_shows_the_planted_numbers(judged: Judged) -> None:
    by_rule = {
        rule: evidence
        for firm in judged.city.firms
        for rule, evidence in judged.hits.get(firm.credit_code, {}).items()
    }
    assert by_rule["suspected_stoppage"]["days"] == 5
    assert by_rule["energy_surge"]["day"] == "2026-11-18"
    assert 1.6 <= float(str(by_rule["energy_surge"]["ratio"])) <= 1.9
    assert by_rule["baseline_excess"]["month"] == "2026-10"
    assert float(str(by_rule["intensity_peers"]["ratio"])) > 2
    assert float(str(by_rule["two_high"]["tce"])) >= 1000
    assert by_rule["two_high"]["newest_project_year"] == 2019
    assert by_rule["d_class_two_years"]["years"] == "2024、2025"
    offline_since = WEEK + timedelta(days=3)  # Thursday 10:00, the last answered poll
    assert judged.offline["online"] is False
    last = judged.offline["last_success_at"]
    assert isinstance(last, datetime)
    assert last.astimezone(LOCAL_TZ) == datetime(2026, 11, 19, 9, 45, tzinfo=LOCAL_TZ)
    assert last.date() == offline_since


def test_the_month_the_protocol_paths_start_in_sums_history_and_derived_days(
    judged: Judged,
) -> None:
    meters = sum(len(f.meters) for f in judged.city.firms)
    assert len(judged.october) == meters
    for row in judged.october:
        assert row["n"] == 31  # 11 days of history rollups, 20 derived from readings
        assert row["energy"] == pytest.approx(row["days"], rel=1e-9)
        assert row["intervals"] == row["day_intervals"]
        assert int(str(row["intervals"])) >= 0.99 * 31 * 96

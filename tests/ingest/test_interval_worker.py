"""Intervals, events and rollups derived in the database, against hand-computed values."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from tests.ingest.conftest import create_meters
from tests.support import derive_all

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=LOCAL_TZ)


async def intervals(db: asyncpg.Connection, meter: int) -> list[tuple[datetime, float, bool]]:
    rows = await db.fetch(
        "SELECT start, energy, estimated FROM intervals WHERE meter_id = $1 ORDER BY start", meter
    )
    return [(r["start"], r["energy"], r["estimated"]) for r in rows]


async def test_intervals_and_rollups_match_hand_computed_values(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    m1, m2 = await create_meters(db, 2, ct=40)
    # 23:00 .. 01:00 local across midnight, 1.25 kWh (secondary) per quarter for m1,
    # 0.5 for m2: 50 and 20 kWh primary per quarter.
    start = at(1, 23)
    readings = [
        Reading(meter_id=m, ts=start + i * Q, energy=100 + i * step, source="t")
        for m, step in ((m1, 1.25), (m2, 0.5))
        for i in range(9)
    ]
    await sink.submit(readings)
    await derive_all(db)

    got = await intervals(db, m1)
    assert got == [(start + i * Q, 50.0, False) for i in range(8)]
    hours = await db.fetch(
        "SELECT bucket, energy, intervals FROM meter_rollups "
        "WHERE granularity = 'hour' AND meter_id = $1 ORDER BY bucket",
        m1,
    )
    assert [(h["bucket"], h["energy"], h["intervals"]) for h in hours] == [
        (at(1, 23), 200.0, 4),
        (at(2, 0), 200.0, 4),
    ]
    days = await db.fetch(
        "SELECT bucket, energy FROM meter_rollups WHERE granularity = 'day' AND meter_id = $1 "
        "ORDER BY bucket",
        m1,
    )
    # Bucketed at Asia/Shanghai midnight, not UTC.
    assert [(d["bucket"], d["energy"]) for d in days] == [(at(1, 0), 200.0), (at(2, 0), 200.0)]
    month = await db.fetchrow(
        "SELECT bucket, energy FROM meter_rollups WHERE granularity = 'month' AND meter_id = $1",
        m1,
    )
    assert month is not None and (month["bucket"], month["energy"]) == (at(1, 0), 400.0)
    firm_days = await db.fetch(
        "SELECT f.bucket, f.energy, f.meters FROM firm_rollups f JOIN meters m ON m.firm_id = "
        "f.firm_id WHERE m.id = $1 AND f.granularity = 'day' ORDER BY f.bucket",
        m1,
    )
    assert [(d["bucket"], d["energy"], d["meters"]) for d in firm_days] == [
        (at(1, 0), 280.0, 2),
        (at(2, 0), 280.0, 2),
    ]
    assert (
        await db.fetchval("SELECT count(*) FROM interval_dirty_ranges WHERE meter_id = $1", m1) == 0
    )


async def test_late_reading_recomputes_exactly_the_affected_intervals(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    t = at(3, 8)
    await sink.submit(
        [
            Reading(meter_id=meter, ts=t + i * Q, energy=e, source="t")
            for i, e in ((0, 10.0), (2, 14.0), (3, 15.0))
        ]
    )
    await derive_all(db)
    # 08:00 -> 08:30 is a gap: 4 kWh spread over two quarters, estimated.
    assert await intervals(db, meter) == [
        (t, 2.0, True),
        (t + Q, 2.0, True),
        (t + 2 * Q, 1.0, False),
    ]
    gaps = await db.fetch("SELECT kind FROM interval_events WHERE meter_id = $1", meter)
    assert [g["kind"] for g in gaps] == ["gap"]

    await sink.submit([Reading(meter_id=meter, ts=t + Q, energy=13.0, source="late")])
    await derive_all(db)
    assert await intervals(db, meter) == [
        (t, 3.0, False),
        (t + Q, 1.0, False),
        (t + 2 * Q, 1.0, False),
    ]
    assert await db.fetchval("SELECT count(*) FROM interval_events WHERE meter_id = $1", meter) == 0
    hour = await db.fetchval(
        "SELECT energy FROM meter_rollups WHERE granularity = 'hour' AND meter_id = $1", meter
    )
    assert hour == 5.0


async def test_rollover_and_reset_become_events_not_spikes(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    t = at(4, 10)
    values = [999_998.0, 999_999.5, 0.7, 1.7, 0.2, 1.2]
    await sink.submit(
        [Reading(meter_id=meter, ts=t + i * Q, energy=v, source="t") for i, v in enumerate(values)]
    )
    await derive_all(db)
    assert [e for _, e, _ in await intervals(db, meter)] == [1.5, 1.2, 1.0, 1.0]
    events = await db.fetch(
        "SELECT kind, start FROM interval_events WHERE meter_id = $1 ORDER BY start", meter
    )
    assert [(e["kind"], e["start"]) for e in events] == [
        ("rollover", t + Q),
        ("reset", t + 3 * Q),
    ]


async def test_daily_features_hold_hourly_energy_and_completeness(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    m1, m2 = await create_meters(db, 2)
    firm = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", m1)
    # m1: a whole local day 3 March, 1 kWh per quarter (4 per hour); m2: only 06:00-08:00,
    # 2 kWh per quarter. Expected: 2 meters x 96 quarters.
    day = at(3, 0)
    readings = [
        Reading(meter_id=m1, ts=day + i * Q, energy=10 + i * 1.0, source="t") for i in range(97)
    ]
    readings += [
        Reading(meter_id=m2, ts=at(3, 6) + i * Q, energy=50 + i * 2.0, source="t") for i in range(9)
    ]
    await sink.submit(readings)
    await derive_all(db)
    row = await db.fetchrow(
        "SELECT energy, intervals, expected, hourly FROM firm_day_features "
        "WHERE firm_id = $1 AND day = $2",
        firm,
        day.date(),
    )
    assert row is not None
    assert row["energy"] == 96 * 1.0 + 8 * 2.0
    assert (row["intervals"], row["expected"]) == (96 + 8, 192)
    hourly = list(row["hourly"])
    assert len(hourly) == 24
    assert hourly[5] == 4.0 and hourly[6] == 12.0 and hourly[7] == 12.0 and hourly[23] == 4.0
    # Late readings for the same day replace the row, never add a second one.
    await sink.submit(
        [
            Reading(meter_id=m2, ts=at(3, 8) + i * Q, energy=66 + i * 2.0, source="t")
            for i in range(1, 5)
        ]
    )
    await derive_all(db)
    rows = await db.fetch(
        "SELECT energy, intervals FROM firm_day_features WHERE firm_id = $1", firm
    )
    assert [(r["energy"], r["intervals"]) for r in rows if r["intervals"] > 96] == [
        (96 + 12 * 2.0, 96 + 12)
    ]
    month = await db.fetchrow(
        "SELECT month, kwh, intervals, expected FROM firm_month_features WHERE firm_id = $1",
        firm,
    )
    assert month is not None
    assert (month["month"], month["kwh"], month["intervals"]) == (
        day.date().replace(day=1),
        96 * 1.0 + 12 * 2.0,
        96 + 12,
    )
    assert month["expected"] == 31 * 96 * 2  # two meters in service all March

"""The pipeline against the real database: exact counts, never "some rows arrived"."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from ingest.quarantine import Reason
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, READING_COLUMNS, Quality, Reading
from meterhub.settings import Settings
from tests.ingest.conftest import create_meters

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=LOCAL_TZ)
STEP = timedelta(minutes=15)


def series(meter_id: int, n: int, *, start: float = 100.0) -> list[Reading]:
    return [
        Reading(
            meter_id=meter_id,
            ts=T0 + i * STEP,
            energy=start + i * 2.5,
            power=10.0,
            voltage_a=230.0,
            power_factor=0.95,
            source="test",
        )
        for i in range(n)
    ]


async def count(db: asyncpg.Connection, table: str, meters: list[int]) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE meter_id = ANY($1)", meters))


async def test_valid_duplicate_and_invalid_readings_are_counted_exactly(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 3, max_power=100)
    good = [r for m in meters for r in series(m, 40)]
    duplicates = good[5:15]  # exact re-sends
    invalid = [
        Reading(meter_id=10**12, ts=T0, energy=1.0, source="test"),  # unknown meter
        Reading(meter_id=meters[0], ts=T0 + timedelta(days=3650), energy=1.0, source="test"),
        Reading(
            meter_id=meters[0], ts=datetime(2020, 1, 1, tzinfo=LOCAL_TZ), energy=1.0, source="test"
        ),
        Reading(meter_id=meters[1], ts=T0 + 100 * STEP, energy=math.nan, source="test"),
        Reading(meter_id=meters[1], ts=T0 + 101 * STEP, energy=-5.0, source="test"),
        Reading(meter_id=meters[2], ts=T0 + 102 * STEP, energy=1_000_000.0, source="test"),
        Reading(meter_id=meters[2], ts=T0 + 103 * STEP, energy=5.0, power=5_000.0, source="test"),
        Reading(meter_id=meters[2], ts=datetime(2026, 3, 2, 8, 0), energy=5.0, source="test"),
    ]
    batch = good + duplicates + invalid
    result = await sink.submit(batch)

    assert result.accepted == len(good) == 120
    assert result.duplicates == 10
    assert result.conflicts == 0
    assert [r.index for r in result.rejected] == list(range(130, 138))
    assert [r.reason for r in result.rejected] == [
        Reason.UNKNOWN_METER,
        Reason.FUTURE_TIMESTAMP,
        Reason.BEFORE_INSTALLATION,
        Reason.NON_FINITE,
        Reason.NEGATIVE_VALUE,
        Reason.ENERGY_BEYOND_ROLLOVER,
        Reason.POWER_BEYOND_RATING,
        Reason.NAIVE_TIMESTAMP,
    ]
    assert await count(db, "readings", meters) == 120
    reasons = await db.fetch(
        "SELECT reason, payload FROM quarantine WHERE meter_id = ANY($1) OR meter_id = $2 "
        "ORDER BY id",
        meters,
        10**12,
    )
    assert sorted(r["reason"] for r in reasons) == sorted(str(r.reason) for r in result.rejected)
    assert all('"source": "test"' in r["payload"] for r in reasons)


async def test_resending_a_batch_stores_nothing_twice(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 2)
    batch = [r for m in meters for r in series(m, 50)]
    first = await sink.submit(batch)
    second = await sink.submit(batch)
    assert (first.accepted, first.duplicates) == (100, 0)
    assert (second.accepted, second.duplicates, second.conflicts) == (0, 100, 0)
    assert await count(db, "readings", meters) == 100


async def test_conflicting_duplicate_is_kept_out_and_recorded(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    original = series(meter, 4)
    await sink.submit(original)
    changed = Reading(meter_id=meter, ts=original[2].ts, energy=999.0, source="late-feed")
    in_batch_twin = Reading(meter_id=meter, ts=T0 + 10 * STEP, energy=1.0, source="a")
    in_batch_other = Reading(meter_id=meter, ts=T0 + 10 * STEP, energy=2.0, source="b")
    result = await sink.submit([changed, in_batch_twin, in_batch_other])
    assert (result.accepted, result.duplicates, result.conflicts) == (1, 0, 2)
    stored = await db.fetchval(
        "SELECT energy FROM readings WHERE meter_id = $1 AND ts = $2", meter, original[2].ts
    )
    assert stored == original[2].energy
    conflicts = await db.fetch(
        "SELECT source, (existing->>'energy')::float8 AS old, (incoming->>'energy')::float8 AS new "
        "FROM reading_conflicts WHERE meter_id = $1 ORDER BY id",
        meter,
    )
    assert [(c["source"], c["old"], c["new"]) for c in conflicts] == [
        ("late-feed", original[2].energy, 999.0),
        ("b", 1.0, 2.0),
    ]


async def test_concurrent_submits_get_their_own_counts(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 8)
    batches = [series(m, 30) for m in meters]
    batches[3] = batches[3] + batches[3][:7]
    results = await asyncio.gather(*(sink.submit(b) for b in batches))
    assert [r.accepted for r in results] == [30] * 8
    assert [r.duplicates for r in results] == [0, 0, 0, 7, 0, 0, 0, 0]
    assert await count(db, "readings", meters) == 240


async def test_water_meter_readings_travel_the_same_path(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1, utility="water", max_power=50)
    result = await sink.submit(series(meter, 5))
    assert result.accepted == 5
    assert await db.fetchval("SELECT unit FROM meters WHERE id = $1", meter) == "m3"


async def test_dirty_ranges_are_marked_for_interval_derivation(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    await sink.submit(series(meter, 8))
    row = await db.fetchrow(
        "SELECT min(ts_min) AS lo, max(ts_max) AS hi FROM interval_dirty_ranges "
        "WHERE meter_id = $1",
        meter,
    )
    assert row is not None
    assert (row["lo"], row["hi"]) == (T0, T0 + 7 * STEP)


async def test_readings_written_by_another_process_are_still_duplicates(
    sink_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A fresh sink has not seen these meters: it tries the direct COPY, meets the stored
    keys, and falls back to the merge, which counts them exactly."""
    meters = await create_meters(db, 2)
    batch = [r for m in meters for r in series(m, 30)]
    async with IngestSink(sink_settings) as first:
        assert (await first.submit(batch)).accepted == 60
    other = sink_settings.model_copy(update={"spool_dir": tmp_path / "other"})
    mixed = batch[:10]
    newer = [
        Reading(meter_id=meters[0], ts=T0 + (40 + i) * STEP, energy=900.0 + i, source="t")
        for i in range(5)
    ]
    async with IngestSink(other) as second:
        result = await second.submit(mixed + newer)
    assert (result.accepted, result.duplicates, result.conflicts) == (5, 10, 0)
    assert await count(db, "readings", meters) == 65


async def test_stored_readings_equal_the_submitted_ones_field_by_field(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 2, max_power=100)
    full = Reading(
        meter_id=meters[0],
        ts=T0 + timedelta(seconds=7, microseconds=123),
        energy=1234.56,
        energy_sharp=1.0,
        energy_peak=2.0,
        energy_flat=3.0,
        energy_valley=4.0,
        power=-12.5,  # export
        voltage_a=230.1,
        voltage_b=229.9,
        voltage_c=231.0,
        current_a=-0.0,
        current_b=15.25,
        current_c=15.5,
        power_factor=-0.93,
        quality=Quality.ESTIMATED | Quality.BACKFILL,
        source="modbus:网关-3",
    )
    sparse = Reading(meter_id=meters[1], ts=T0, energy=7.0, source="")
    result = await sink.submit([full, sparse])
    assert result.accepted == 2
    rows = await db.fetch(
        f"SELECT {', '.join(READING_COLUMNS)} FROM readings WHERE meter_id = ANY($1) "
        "ORDER BY meter_id",
        meters,
    )
    assert [Reading(**dict(row)) for row in rows] == [full, sparse]


async def test_readings_of_the_wrong_type_are_quarantined_not_fatal(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    good = series(meter, 3)
    bad = [
        Reading(meter_id="x", ts=T0, energy=1.0, source="test"),  # type: ignore[arg-type]
        Reading(meter_id=meter, ts="2026-03-02", energy=1.0, source="test"),  # type: ignore[arg-type]
        Reading(meter_id=meter, ts=T0 + 9 * STEP, energy="1", source="test"),  # type: ignore[arg-type]
        Reading(meter_id=meter, ts=T0 + 9 * STEP, quality=0.5, source="test"),  # type: ignore[arg-type]
    ]
    result = await sink.submit(good + bad)
    assert result.accepted == 3
    assert [(r.index, r.reason) for r in result.rejected] == [
        (3, Reason.WRONG_TYPE),
        (4, Reason.WRONG_TYPE),
        (5, Reason.WRONG_TYPE),
        (6, Reason.WRONG_TYPE),
    ]
    assert await count(db, "readings", [meter]) == 3


async def test_an_edited_meter_is_validated_by_its_new_dates_without_waiting(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    """Another process edits the registry; the sink hears of it (LISTEN/NOTIFY) instead of
    waiting for its periodic reload (a minute)."""
    (meter,) = await create_meters(db, 1)
    assert (await sink.submit(series(meter, 2))).accepted == 2  # the sink knows the meter
    await db.execute("UPDATE meters SET removed_at = $2 WHERE id = $1", meter, T0 + 2 * STEP)
    await asyncio.sleep(0.5)  # the notification travels on the writers' connections
    late = Reading(meter_id=meter, ts=T0 + 5 * STEP, energy=200.0, source="test")
    result = await sink.submit([late])
    assert [r.reason for r in result.rejected] == [Reason.AFTER_REMOVAL]


async def test_a_reading_the_database_refuses_is_quarantined_alone(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    """PostgreSQL text cannot hold NUL: the COPY of the whole batch fails; the sink halves
    the batch until the culprit stands alone, quarantines it and stores the rest."""
    (meter,) = await create_meters(db, 1)
    good = series(meter, 6)
    bad = Reading(meter_id=meter, ts=T0 + 20 * STEP, energy=500.0, source="gw\x00evil")
    result = await sink.submit([*good[:3], bad, *good[3:]])
    assert result.accepted == 6
    assert [(r.index, r.reason) for r in result.rejected] == [(3, Reason.DATABASE_REJECTED)]
    assert await count(db, "readings", [meter]) == 6
    row = await db.fetchrow(
        "SELECT source, reason FROM quarantine WHERE meter_id = $1 ORDER BY id DESC LIMIT 1",
        meter,
    )
    assert row is not None and row["reason"] == "database_rejected"
    assert "\x00" not in row["source"]

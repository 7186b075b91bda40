"""Several derivation workers on one backlog: no meter derived twice at once, no mark lost,
every interval what `derive` gives for the meter's whole stored history."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.dirty_marks import METER_LOCK_SPACE, backlog, claim
from ingest.interval_grid import ceil_to_grid, floor_to_grid
from ingest.interval_worker import (
    DeriveStats,
    derive_pending,
    prepare_connection,
    run_interval_worker,
)
from ingest.intervals import derive
from ingest.registry import MeterRegistry
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from tests.ingest.conftest import create_meters
from tests.support import derive_all

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)
T0 = datetime(2026, 5, 4, tzinfo=LOCAL_TZ)


def _series(meter: int, rng: random.Random) -> list[Reading]:
    """A day and a half of quarter hours with a gap, a reset and missing tariffs."""
    out, energy = [], 1000.0 + meter % 50
    for i in range(150):
        if 40 <= i < 44:
            continue  # a gap
        energy = 3.0 if i == 90 else round(energy + rng.randint(0, 300) / 100, 2)
        sharp = None if i % 17 == 0 else round(energy * 0.3, 2)
        out.append(Reading(meter, T0 + i * Q, energy=energy, energy_sharp=sharp, source="t"))
    return out


async def _feed(sink: IngestSink, meters: list[int], seed: int) -> list[Reading]:
    """Submit every meter's series in many small batches, 5 % of readings late."""
    rng = random.Random(seed)
    every = [r for m in meters for r in _series(m, rng)]
    late = [r for r in every if rng.random() < 0.05]
    on_time = sorted((r for r in every if r not in late), key=lambda r: (r.ts, r.meter_id))
    for i in range(0, len(on_time), 400):
        await sink.submit(on_time[i : i + 400])
    for i in range(0, len(late), 50):
        await sink.submit(late[i : i + 50])
    return every


async def _stored(db: asyncpg.Connection, meters: list[int]) -> dict[int, list[tuple[object, ...]]]:
    rows = await db.fetch(
        "SELECT meter_id, start, energy, sharp, estimated, complete FROM intervals "
        "WHERE meter_id = ANY($1::bigint[]) ORDER BY meter_id, start",
        meters,
    )
    out: dict[int, list[tuple[object, ...]]] = {m: [] for m in meters}
    for r in rows:
        out[r["meter_id"]].append(tuple(r.values())[1:])
    return out


async def _expected(
    db: asyncpg.Connection, meters: list[int], readings: list[Reading]
) -> dict[int, list[tuple[object, ...]]]:
    registry = MeterRegistry()
    await registry.refresh(db, meters)
    out: dict[int, list[tuple[object, ...]]] = {}
    for m in meters:
        rs = sorted((r for r in readings if r.meter_id == m), key=lambda r: r.ts)
        info = registry.get(m)
        assert info is not None
        whole = derive(
            info, rs, window_start=floor_to_grid(rs[0].ts), window_end=ceil_to_grid(rs[-1].ts)
        )
        out[m] = [(i.start, i.energy, i.sharp, i.estimated, i.complete) for i in whole.intervals]
    return out


async def _worker(dsn: str, done: asyncio.Event, stats: list[DeriveStats]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await prepare_connection(conn)
        registry = MeterRegistry()
        while True:
            result = await derive_pending(conn, registry, limit=10)
            stats.append(result)
            if result.marks == 0:
                if done.is_set() and (await backlog(conn)).ranges == 0:
                    return
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def test_two_workers_on_one_backlog_equal_whole_history(
    sink: IngestSink, db: asyncpg.Connection, settings: Settings
) -> None:
    meters = await create_meters(db, 12, ct=40) + await create_meters(db, 8, ct=5)
    done = asyncio.Event()
    first: list[DeriveStats] = []
    second: list[DeriveStats] = []
    workers = [
        asyncio.create_task(_worker(settings.dsn(), done, first)),
        asyncio.create_task(_worker(settings.dsn(), done, second)),
    ]
    try:
        readings = await _feed(sink, meters, seed=11)  # derived while readings arrive
        done.set()
        await asyncio.wait_for(asyncio.gather(*workers), 120)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    assert sum(s.marks for s in first) > 0 and sum(s.marks for s in second) > 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM interval_dirty_ranges WHERE meter_id = ANY($1::bigint[])", meters
        )
        == 0
    )
    assert await _stored(db, meters) == await _expected(db, meters, readings)
    gaps = await db.fetchval(
        "SELECT count(*) FROM interval_events WHERE kind = 'gap' AND meter_id = ANY($1::bigint[])",
        meters,
    )
    assert gaps == len(meters)  # one gap per meter, never doubled


async def test_a_claimed_meter_is_not_claimed_by_another_pass(
    sink: IngestSink, db: asyncpg.Connection, settings: Settings
) -> None:
    meters = await create_meters(db, 3)
    rng = random.Random(3)
    series = [_series(m, rng) for m in meters]
    for rs in series:
        await sink.submit(rs[:50])
    other = await asyncpg.connect(settings.dsn())
    try:
        async with db.transaction():
            mine = await claim(db, limit=1_000_000)
            assert set(meters) <= set(mine.ranges)
            for rs in series:  # new marks of the same meters, committed during the pass
                await sink.submit(rs[50:])
            async with other.transaction():
                theirs = await claim(other, limit=1_000_000)
                assert not set(meters) & set(theirs.ranges)
            raise _RollbackError
    except _RollbackError:
        pass
    finally:
        await other.close()
    # Rolled back: every mark is there again, for whoever comes next.
    pending = await db.fetch(
        "SELECT meter_id, min(ts_min) AS lo, max(ts_max) AS hi FROM interval_dirty_ranges "
        "WHERE meter_id = ANY($1::bigint[]) GROUP BY meter_id ORDER BY meter_id",
        meters,
    )
    assert [(p["meter_id"], p["lo"], p["hi"]) for p in pending] == [
        (m, rs[0].ts, rs[-1].ts) for m, rs in zip(meters, series, strict=True)
    ]


class _RollbackError(Exception):
    pass


async def test_a_pass_reports_one_latency_per_batch_weighted_by_the_ranges_it_kept(
    sink: IngestSink, db: asyncpg.Connection, settings: Settings
) -> None:
    await derive_all(db)  # what earlier tests left
    m1, m2, m3 = await create_meters(db, 3)
    rng = random.Random(5)
    series = [_series(m, rng) for m in (m1, m2, m3)]
    for half in (slice(0, 20), slice(20, 40)):  # two reading batches: two marks
        await sink.submit([r for rs in series for r in rs[half]])
    assert await db.fetchval("SELECT count(*) FROM interval_dirty") == 2
    other = await asyncpg.connect(settings.dsn())
    try:
        # Another pass holds m3: this one keeps m1's and m2's ranges and puts m3's back.
        await other.execute("SELECT pg_advisory_lock($1, $2)", METER_LOCK_SPACE, m3)
        await prepare_connection(db)
        registry = MeterRegistry()
        held = await derive_pending(db, registry)
        await other.execute("SELECT pg_advisory_unlock($1, $2)", METER_LOCK_SPACE, m3)
        rest = await derive_pending(db, registry)
    finally:
        await other.close()
    assert (held.marks, held.meters, held.weights.tolist()) == (4, 2, [2, 2])
    assert (rest.marks, rest.meters, rest.weights.tolist()) == (2, 1, [1, 1])
    for stats in (held, rest):
        assert len(stats.latencies) == 2 and all(0 <= s < 60 for s in stats.latencies)
    assert await db.fetchval("SELECT count(*) FROM interval_dirty") == 0


async def test_the_worker_loop_tells_its_observer_what_each_pass_took(
    sink: IngestSink, db: asyncpg.Connection, settings: Settings
) -> None:
    await derive_all(db)  # what earlier tests left
    meters = await create_meters(db, 2)
    readings = await _feed(sink, meters, seed=11)
    marks = await db.fetchval("SELECT coalesce(sum(ranges), 0) FROM interval_dirty")
    passes: list[DeriveStats] = []
    stop = asyncio.Event()

    def observe(stats: DeriveStats) -> None:
        passes.append(stats)
        if sum(s.marks for s in passes) >= marks:
            stop.set()

    await asyncio.wait_for(
        run_interval_worker(settings, idle=0.05, stop=stop, on_pass=observe), timeout=30
    )
    assert sum(s.marks for s in passes) == marks > 0  # every range, each in one pass
    assert sum(int(s.weights.sum()) for s in passes) == marks
    assert all(len(s.latencies) == len(s.weights) and s.marks for s in passes)
    assert await db.fetchval("SELECT count(*) FROM interval_dirty") == 0
    assert await _stored(db, meters) == await _expected(db, meters, readings)

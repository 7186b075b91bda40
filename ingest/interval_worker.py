"""Turns dirty reading ranges into 15-minute intervals, events and rollups.

The writer marks, in the same transaction as the readings, which (meter, time range) changed
(`interval_dirty`). `derive_pending` claims a slice of those marks, follows the recompute
contract of `ingest.intervals` (window, context readings, derive, replace), refreshes the
rollups of the touched buckets and deletes the marks — all in one transaction, so a crash
leaves the marks for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson
from prometheus_client import Counter, Histogram

from ingest.intervals import DERIVED_EVENT_KINDS, Derivation, affected_window, derive
from ingest.meter_ratios import ratio_histories, with_history
from ingest.registry import MeterRegistry
from ingest.rollups import CREATE_WINDOWS, WINDOWS, refresh_rollups
from meterhub.logs import get_logger
from meterhub.reading import Reading
from meterhub.settings import Settings

log = get_logger(__name__)

DERIVED_INTERVALS = Counter(
    "meterhub_intervals_derived_total", "15-minute intervals (re)written by the interval worker"
)
INTERVAL_EVENTS = Counter(
    "meterhub_interval_events_total", "Gaps, rollovers, resets and excess deltas found", ["kind"]
)
DERIVE_SECONDS = Histogram("meterhub_interval_derive_seconds", "Time of one derivation run")

_LOCK_KEY = 0x6D687563  # one deriver at a time across processes
#: How far back a previous reading is looked for; a longer silence starts a new series.
LOOKBACK = "35 days"

_CLAIM = """
DELETE FROM interval_dirty
WHERE id IN (SELECT id FROM interval_dirty ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING meter_id, ts_min, ts_max
"""
_NEIGHBOURS = f"""
SELECT d.meter_id,
  (SELECT r.ts FROM readings r WHERE r.meter_id = d.meter_id AND r.energy IS NOT NULL
     AND r.ts < d.a AND r.ts >= d.a - interval '{LOOKBACK}' ORDER BY r.ts DESC LIMIT 1) AS prev,
  (SELECT r.ts FROM readings r WHERE r.meter_id = d.meter_id AND r.energy IS NOT NULL
     AND r.ts > d.b AND r.ts <= d.b + interval '{LOOKBACK}' ORDER BY r.ts LIMIT 1) AS next
FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS d(meter_id, a, b)
"""
_CONTEXT_BOUNDS = f"""
SELECT d.meter_id,
  coalesce((SELECT r.ts FROM readings r WHERE r.meter_id = d.meter_id AND r.energy IS NOT NULL
     AND r.ts <= d.ws AND r.ts >= d.ws - interval '{LOOKBACK}' ORDER BY r.ts DESC LIMIT 1),
     d.ws) AS lo,
  coalesce((SELECT r.ts FROM readings r WHERE r.meter_id = d.meter_id AND r.energy IS NOT NULL
     AND r.ts >= d.we AND r.ts <= d.we + interval '{LOOKBACK}' ORDER BY r.ts LIMIT 1),
     d.we) AS hi
FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS d(meter_id, ws, we)
"""
_CONTEXT = """
SELECT r.meter_id, r.ts, r.energy, r.energy_sharp, r.energy_peak, r.energy_flat,
       r.energy_valley
FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS d(meter_id, lo, hi)
JOIN readings r ON r.meter_id = d.meter_id AND r.ts >= d.lo AND r.ts <= d.hi
WHERE r.ts >= $4 AND r.ts <= $5
ORDER BY r.meter_id, r.ts
"""
_DELETE_INTERVALS = f"""
DELETE FROM intervals i USING {WINDOWS} w
WHERE i.meter_id = w.meter_id AND i.start >= w.ws AND i.start < w.we
  AND i.start >= $1 AND i.start < $2
"""
_DELETE_EVENTS = f"""
DELETE FROM interval_events e USING {WINDOWS} w
WHERE e.meter_id = w.meter_id AND e.start < w.we AND e."end" > w.ws
  AND e.kind IN ({", ".join(f"'{k}'" for k in DERIVED_EVENT_KINDS)})
"""
_INSERT_EVENT = """
INSERT INTO interval_events (meter_id, kind, start, "end", detail)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (meter_id, kind, start) DO UPDATE SET "end" = EXCLUDED."end",
    detail = EXCLUDED.detail, found_at = now()
"""
_INTERVAL_COLUMNS = (
    "meter_id",
    "start",
    "energy",
    "sharp",
    "peak",
    "flat",
    "valley",
    "estimated",
    "complete",
)


@dataclass(frozen=True, slots=True)
class _Window:
    meter_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DeriveStats:
    marks: int
    meters: int
    intervals: int
    events: int


def _merge_marks(rows: Iterable[asyncpg.Record]) -> dict[int, tuple[datetime, datetime]]:
    ranges: dict[int, tuple[datetime, datetime]] = {}
    for row in rows:
        lo, hi = ranges.get(row["meter_id"], (row["ts_min"], row["ts_max"]))
        ranges[row["meter_id"]] = (min(lo, row["ts_min"]), max(hi, row["ts_max"]))
    return ranges


async def _windows(
    conn: asyncpg.Connection, ranges: dict[int, tuple[datetime, datetime]]
) -> list[_Window]:
    ids = list(ranges)
    rows = await conn.fetch(
        _NEIGHBOURS, ids, [ranges[m][0] for m in ids], [ranges[m][1] for m in ids]
    )
    windows = []
    for row in rows:
        a, b = ranges[row["meter_id"]]
        ws, we = affected_window(
            batch_start=a, batch_end=b, previous=row["prev"], following=row["next"]
        )
        windows.append(_Window(row["meter_id"], ws, we))
    return windows


async def _context(conn: asyncpg.Connection, windows: list[_Window]) -> dict[int, list[Reading]]:
    ids = [w.meter_id for w in windows]
    bounds = await conn.fetch(
        _CONTEXT_BOUNDS, ids, [w.start for w in windows], [w.end for w in windows]
    )
    lows, highs = [b["lo"] for b in bounds], [b["hi"] for b in bounds]
    rows = await conn.fetch(
        _CONTEXT, [b["meter_id"] for b in bounds], lows, highs, min(lows), max(highs)
    )
    readings: dict[int, list[Reading]] = {m: [] for m in ids}
    for r in rows:
        readings[r["meter_id"]].append(Reading(*r.values()))  # column order matches Reading
    return readings


async def _store(
    conn: asyncpg.Connection, windows: list[_Window], derivations: list[Derivation]
) -> tuple[int, int]:
    await conn.execute(CREATE_WINDOWS)
    await conn.copy_records_to_table(
        WINDOWS, records=[(w.meter_id, w.start, w.end) for w in windows]
    )
    lo, hi = min(w.start for w in windows), max(w.end for w in windows)
    await conn.execute(_DELETE_INTERVALS, lo, hi)
    await conn.execute(_DELETE_EVENTS)
    records = [
        (i.meter_id, i.start, i.energy, i.sharp, i.peak, i.flat, i.valley, i.estimated, i.complete)
        for d in derivations
        for i in d.intervals
    ]
    if records:
        await conn.copy_records_to_table("intervals", records=records, columns=_INTERVAL_COLUMNS)
    events = [e for d in derivations for e in d.events]
    if events:
        await conn.executemany(
            _INSERT_EVENT,
            [(e.meter_id, e.kind, e.start, e.end, orjson.dumps(e.detail).decode()) for e in events],
        )
        for e in events:
            INTERVAL_EVENTS.labels(e.kind).inc()
    await refresh_rollups(conn)
    return len(records), len(events)


async def derive_pending(
    conn: asyncpg.Connection, registry: MeterRegistry, *, limit: int = 20_000
) -> DeriveStats:
    """One run: claim up to ``limit`` dirty marks and bring their intervals and rollups up
    to date. Returns what was done (``marks == 0`` means nothing was pending)."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        marks = await conn.fetch(_CLAIM, limit)
        if not marks:
            return DeriveStats(0, 0, 0, 0)
        ranges = _merge_marks(marks)
        await registry.refresh(conn, ranges)
        windows = [w for w in await _windows(conn, ranges) if registry.get(w.meter_id)]
        if not windows:
            return DeriveStats(len(marks), 0, 0, 0)
        context = await _context(conn, windows)
        histories = await ratio_histories(conn, (w.meter_id for w in windows))
        derivations = []
        for w in windows:
            meter = registry.get(w.meter_id)
            assert meter is not None
            meter = with_history(meter, histories)
            derivations.append(
                derive(meter, context[w.meter_id], window_start=w.start, window_end=w.end)
            )
        n_intervals, n_events = await _store(conn, windows, derivations)
    DERIVED_INTERVALS.inc(n_intervals)
    DERIVE_SECONDS.observe(time.perf_counter() - started)
    return DeriveStats(len(marks), len(windows), n_intervals, n_events)


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Calendar arithmetic (month buckets) must happen in local time."""
    await conn.execute("SET timezone = 'Asia/Shanghai'")


async def run_interval_worker(
    settings: Settings, *, idle: float = 1.0, stop: asyncio.Event | None = None
) -> None:
    """Derive until ``stop`` is set, sleeping ``idle`` seconds whenever nothing is pending.
    A lost database is waited for; any other error propagates (run it under a
    `meterhub.supervise.Supervisor`, which logs it and starts the worker again)."""
    stop = stop or asyncio.Event()
    registry = MeterRegistry()
    conn: asyncpg.Connection | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(settings.dsn(), timeout=5)
                    await prepare_connection(conn)
                stats = await derive_pending(conn, registry)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("interval derivation failed; retrying", error=repr(exc))
                if conn is not None:
                    conn.terminate()
                conn = None
                stats = DeriveStats(0, 0, 0, 0)
            if stats.marks == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)
    except BaseException:
        if conn is not None:
            conn.terminate()  # no connection left behind by a crash or a cancellation
        raise
    if conn is not None:
        await conn.close()

"""Turns dirty reading ranges into 15-minute intervals, events and rollups, in bulk.

The writer marks, in the same transaction as the readings, which (meter, time range) changed
(`interval_dirty`). `derive_pending` is one pass: it claims up to ``limit`` marks of
meters no other pass holds (`ingest.dirty_marks`), follows the recompute contract of
`ingest.intervals` for all of them at once (windows, context readings in one binary COPY,
`ingest.bulk_intervals.derive_bulk`, one DELETE and one COPY of intervals), refreshes the
rollups and features of the touched buckets once, and commits: a crash leaves the marks for
the next pass. Several workers may run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import numpy as np
import orjson
from numpy.typing import NDArray
from prometheus_client import Counter, Histogram

from ingest import pgcopy
from ingest.bulk_intervals import (
    TARIFFS,
    BulkDerivation,
    ReadingColumns,
    Windows,
    derive_bulk,
    is_sorted,
)
from ingest.dirty_marks import Claim, backlog, claim
from ingest.hour_rollups import HOUR, hour_sums
from ingest.interval_grid import ceil_to_grid, floor_to_grid, to_micros
from ingest.interval_ratios import RatioPiece, ratio_pieces
from ingest.intervals import DERIVED_EVENT_KINDS, affected_window
from ingest.meter_ratios import ratio_histories, with_history
from ingest.metrics import QUERYABLE_SECONDS
from ingest.neighbours import nearest
from ingest.plans import by_key_probes
from ingest.registry import MeterRegistry
from ingest.rollups import CREATE_WINDOWS, WINDOWS, refresh_rollups
from meterhub.logs import get_logger
from meterhub.meter import MeterInfo
from meterhub.settings import Settings

log = get_logger(__name__)

DERIVED_INTERVALS = Counter(
    "meterhub_intervals_derived_total", "15-minute intervals (re)written by the interval worker"
)
INTERVAL_EVENTS = Counter(
    "meterhub_interval_events_total", "Gaps, rollovers, resets and excess deltas found", ["kind"]
)
DERIVE_SECONDS = Histogram("meterhub_interval_derive_seconds", "Time of one derivation run")

#: Seconds between two backlog measurements (gauges) of a busy worker.
BACKLOG_EVERY = 2.0

_CONTEXT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS derive_context (
    meter_id bigint NOT NULL, lo timestamptz NOT NULL, hi timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""
# COPYed out binary; NULL registers as NaN, so every row has one layout (`pgcopy.decode`).
# One index range scan per window, whatever the statistics say: the newest readings lie past
# their chunk's histogram, so the planner takes them for a handful of rows and would join
# them to every window in a nested loop (seen: 37 s for 74,000 readings). Unordered: the
# rows are sorted after decoding (`_sorted`), cheaper than a server-side sort.
_CONTEXT = """
SELECT r.*
FROM derive_context d CROSS JOIN LATERAL (
    SELECT r.meter_id, r.ts, coalesce(r.energy, 'NaN'), coalesce(r.energy_sharp, 'NaN'),
           coalesce(r.energy_peak, 'NaN'), coalesce(r.energy_flat, 'NaN'),
           coalesce(r.energy_valley, 'NaN')
    FROM readings r
    WHERE r.meter_id = d.meter_id AND r.ts >= d.lo AND r.ts <= d.hi
      AND r.ts >= '{lo}' AND r.ts <= '{hi}'
    OFFSET 0
) r
"""
_CONTEXT_KINDS = (pgcopy.Kind.BIGINT, pgcopy.Kind.TIMESTAMPTZ, *[pgcopy.Kind.DOUBLE] * 5)
_DELETE_INTERVALS = f"""
DELETE FROM intervals i USING {WINDOWS} w
WHERE i.meter_id = w.meter_id AND i.start >= w.ws AND i.start < w.we
  AND i.start >= '{{lo}}' AND i.start < '{{hi}}'
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
_INTERVAL_COLUMNS = ("meter_id", "start", "energy", *TARIFFS, "estimated", "complete")


@dataclass(frozen=True, slots=True)
class DeriveStats:
    marks: int  # dirty ranges taken (0: nothing was free to take)
    meters: int
    intervals: int
    events: int
    #: Seconds from the commit of each reading batch whose marks this pass claimed to this
    #: pass's commit (committed -> queryable), and how many of its marks the pass took.
    latencies: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    weights: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


_NOTHING = DeriveStats(0, 0, 0, 0)


class _Running:
    """When the interval workers of this process started and last ended a pass (for
    `/readyz`)."""

    def __init__(self) -> None:
        self._workers: dict[int, tuple[float, float | None]] = {}  # started, last pass
        self._tokens = itertools.count()
        self._passed: float | None = None  # the last pass of any worker

    def enter(self) -> int:
        token = next(self._tokens)
        self._workers[token] = (time.monotonic(), None)
        return token

    def leave(self, token: int) -> None:
        del self._workers[token]

    def passed(self, token: int) -> None:
        """A pass of worker ``token`` has ended (committed, or found nothing to do)."""
        self._passed = time.monotonic()
        self._workers[token] = (self._workers[token][0], self._passed)

    def uptime(self) -> float | None:
        """Seconds since the newest running worker started; None when none runs here."""
        if not self._workers:
            return None
        return time.monotonic() - max(started for started, _ in self._workers.values())

    def since_pass(self) -> float | None:
        """Seconds since the running workers' latest pass ended (with none running, any
        worker's of this process); None before the first."""
        if self._workers:
            passes = [p for _, p in self._workers.values() if p is not None]
            return time.monotonic() - max(passes) if passes else None
        return None if self._passed is None else time.monotonic() - self._passed


RUNNING = _Running()


async def _windows(
    conn: asyncpg.Connection,
    ranges: dict[int, tuple[datetime, datetime]],
    registry: MeterRegistry,
) -> tuple[list[Windows], list[tuple[int, datetime, datetime]]]:
    """The window of each claimed meter (registered ones), by ascending meter id, and the
    windows to derive as rounds: a window over which the meter's CT x PT multiplier changes
    is cut into ratio pieces (`ingest.interval_ratios`), round r holding the r-th piece of
    every window that has one (most windows are one piece: one round)."""
    ids = sorted(m for m in ranges if registry.get(m) is not None)
    starts, ends = [ranges[m][0] for m in ids], [ranges[m][1] for m in ids]
    previous = await nearest(conn, ids, starts, after=False, inclusive=False)
    following = await nearest(conn, ids, ends, after=True, inclusive=False)
    spans = []
    for m, a, b, prev, nxt in zip(ids, starts, ends, previous, following, strict=True):
        ws, we = affected_window(batch_start=a, batch_end=b, previous=prev, following=nxt)
        # Whole hours: the pass then writes every interval of the hours it touches and
        # sums their rollups itself (any grid window derives what whole history does).
        spans.append((m, floor_to_grid(ws, HOUR), ceil_to_grid(we, HOUR)))
    histories = await ratio_histories(conn, ids)
    rounds: list[list[tuple[MeterInfo, RatioPiece]]] = []
    for m, ws, we in spans:
        meter = with_history(registry.meters[m], histories)
        for r, piece in enumerate(ratio_pieces(meter, window_start=ws, window_end=we)):
            if r == len(rounds):
                rounds.append([])
            rounds[r].append((meter, piece))
    return [_window_columns(pieces) for pieces in rounds], spans


def _window_columns(pieces: list[tuple[MeterInfo, RatioPiece]]) -> Windows:
    return Windows(
        meter_id=np.array([m.meter_id for m, _ in pieces], dtype=np.int64),
        start=np.array([to_micros(p.start) for _, p in pieces], dtype=np.int64),
        end=np.array([to_micros(p.end) for _, p in pieces], dtype=np.int64),
        multiplier=np.array([p.multiplier for _, p in pieces], dtype=np.float64),
        rollover=np.array([m.rollover for m, _ in pieces], dtype=np.float64),
        max_power=np.array([m.max_power for m, _ in pieces], dtype=np.float64),
    )


def _derive_rounds(rounds: list[Windows], context: ReadingColumns) -> BulkDerivation:
    """`derive_bulk` of each round, merged: intervals by (meter, start), and each event
    once (a pair of readings across a ratio change is seen by both pieces, equal)."""
    results = [derive_bulk(rounds[0], context)]
    for windows in rounds[1:]:
        results.append(derive_bulk(windows, _only(context, windows.meter_id)))
    if len(results) == 1:
        return results[0]
    meter_id = np.concatenate([r.meter_id for r in results])
    start = np.concatenate([r.start for r in results])
    order = np.lexsort((start, meter_id))
    seen: set[tuple[int, str, datetime, datetime]] = set()
    events = []
    for event in sorted((e for r in results for e in r.events), key=lambda e: e.meter_id):
        key = (event.meter_id, event.kind, event.start, event.end)
        if key not in seen:
            seen.add(key)
            events.append(event)
    return BulkDerivation(
        meter_id=meter_id[order],
        start=start[order],
        energy=np.concatenate([r.energy for r in results])[order],
        tariffs=np.concatenate([r.tariffs for r in results], axis=1)[:, order],
        estimated=np.concatenate([r.estimated for r in results])[order],
        complete=np.concatenate([r.complete for r in results])[order],
        events=events,
    )


def _only(readings: ReadingColumns, meter_ids: NDArray[np.int64]) -> ReadingColumns:
    keep = np.isin(readings.meter_id, meter_ids)
    return ReadingColumns(
        meter_id=readings.meter_id[keep],
        ts=readings.ts[keep],
        energy=readings.energy[keep],
        tariffs=readings.tariffs[:, keep],
    )


async def _context(
    conn: asyncpg.Connection, spans: list[tuple[int, datetime, datetime]]
) -> ReadingColumns:
    """The context readings of every window (step 2 of the recompute contract): from the
    last energy-bearing reading at or before its start through the first at or after its
    end, in one binary COPY."""
    ids, starts, ends = (list(column) for column in zip(*spans, strict=True))
    firsts = await nearest(conn, ids, starts, after=False, inclusive=True)
    lasts = await nearest(conn, ids, ends, after=True, inclusive=True)
    bounds = [
        (m, first or ws, last or we)
        for m, ws, we, first, last in zip(ids, starts, ends, firsts, lasts, strict=True)
    ]
    await conn.execute(_CONTEXT_TABLE)
    await conn.copy_records_to_table("derive_context", records=bounds)
    lo, hi = min(b[1] for b in bounds), max(b[2] for b in bounds)
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    query = _CONTEXT.format(lo=lo.isoformat(), hi=hi.isoformat())
    await conn.copy_from_query(query, output=collect, format="binary")
    meter_id, ts, *registers = pgcopy.decode(b"".join(chunks), _CONTEXT_KINDS)
    return _sorted(
        ReadingColumns(
            meter_id=meter_id.astype(np.int64),
            ts=ts.astype(np.int64),
            energy=registers[0].astype(np.float64),
            tariffs=np.array(registers[1:], dtype=np.float64).reshape(4, len(ts)),
        )
    )


def _sorted(readings: ReadingColumns) -> ReadingColumns:
    """``readings`` by (meter_id, ts); as they are when already in that order."""
    m, ts = readings.meter_id, readings.ts
    if is_sorted(m, ts):
        return readings
    order = np.lexsort((ts, m))
    return ReadingColumns(
        meter_id=m[order],
        ts=ts[order],
        energy=readings.energy[order],
        tariffs=readings.tariffs[:, order],
    )


async def _store(
    conn: asyncpg.Connection, spans: list[tuple[int, datetime, datetime]], result: BulkDerivation
) -> None:
    lo, hi = min(ws for _, ws, _ in spans), max(we for _, _, we in spans)
    # One primary-key probe per window (`ingest.plans`): with a free choice the planner
    # either compared every interval of the chunks in range with every window in a nested
    # loop (2.8 s for 8,000 rows) or hash-joined the windows to a scan of those chunks.
    bounded = _DELETE_INTERVALS.format(lo=lo.isoformat(), hi=hi.isoformat())
    await conn.execute(by_key_probes(bounded))
    await conn.execute(_DELETE_EVENTS)
    if len(result.meter_id):
        kind = pgcopy.Kind
        nan = np.isnan(result.tariffs)
        columns = [
            pgcopy.Column(kind.BIGINT, result.meter_id),
            pgcopy.Column(kind.TIMESTAMPTZ, result.start),
            pgcopy.Column(kind.DOUBLE, result.energy),
            *[pgcopy.Column(kind.DOUBLE, result.tariffs[j], nan[j]) for j in range(4)],
            pgcopy.Column(kind.BOOLEAN, result.estimated),
            pgcopy.Column(kind.BOOLEAN, result.complete),
        ]
        data = memoryview(pgcopy.encode(columns))  # a buffer, sent as it is (see writer)
        await conn.copy_to_table(
            "intervals",
            source=data,  # type: ignore[arg-type]
            columns=list(_INTERVAL_COLUMNS),
            format="binary",
        )
    if result.events:
        await conn.executemany(
            _INSERT_EVENT,
            [
                (e.meter_id, e.kind, e.start, e.end, orjson.dumps(e.detail).decode())
                for e in result.events
            ],
        )
        for e in result.events:
            INTERVAL_EVENTS.labels(e.kind).inc()
    await refresh_rollups(conn, hours=hour_sums(result))


async def derive_pending(
    conn: asyncpg.Connection, registry: MeterRegistry, *, limit: int = 20_000
) -> DeriveStats:
    """One pass: claim up to ``limit`` dirty marks and bring their intervals, events and
    rollups up to date. Returns what was done (``marks == 0``: nothing was free to take)."""
    started = time.perf_counter()
    async with conn.transaction():
        taken: Claim = await claim(conn, limit=limit)
        if not taken.marks:
            return _NOTHING
        await registry.refresh(conn, taken.ranges)
        rounds, spans = await _windows(conn, taken.ranges, registry)
        n_intervals = n_events = 0
        if spans:
            await conn.execute(CREATE_WINDOWS)
            await conn.copy_records_to_table(WINDOWS, records=spans)
            result = _derive_rounds(rounds, await _context(conn, spans))
            await _store(conn, spans, result)
            n_intervals, n_events = len(result.meter_id), len(result.events)
    # The marks of one reading batch (a mark and its put-back parts) share its transaction's
    # time: one observation each.
    batches, which = np.unique(taken.marked, return_inverse=True)
    weights = np.bincount(which, weights=taken.kept, minlength=len(batches)).astype(np.int64)
    latencies = np.maximum(0.0, time.time() - batches)
    for latency in latencies.tolist():
        QUERYABLE_SECONDS.observe(latency)
    DERIVED_INTERVALS.inc(n_intervals)
    DERIVE_SECONDS.observe(time.perf_counter() - started)
    return DeriveStats(int(weights.sum()), len(spans), n_intervals, n_events, latencies, weights)


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Calendar arithmetic (month buckets) must happen in local time; a pass's hashes
    (a claim's ranges grouped by meter, rollup sums) fit in memory instead of spilling; its
    statements are short and many: no JIT compilation (15-25 ms each time the planner's
    estimate of a scan of fresh chunks crossed the threshold) and no parallel workers to
    start beside the writers on the same cores. Its per-meter look-ups carry literal bounds,
    so the planner has already dropped the chunks outside them; TimescaleDB's runtime
    exclusion would test every remaining chunk's constraints again at each of the thousands
    of rescans (a probe of 2,000 meters: 97 ms with it, 14 ms without)."""
    await conn.execute(
        "SET timezone = 'Asia/Shanghai'; SET work_mem = '64MB'; SET jit = off; "
        "SET max_parallel_workers_per_gather = 0; "
        "SET timescaledb.enable_runtime_exclusion = off"
    )


async def run_interval_worker(
    settings: Settings,
    *,
    idle: float = 1.0,
    stop: asyncio.Event | None = None,
    on_pass: Callable[[DeriveStats], None] | None = None,
) -> None:
    """Derive until ``stop`` is set, sleeping ``idle`` seconds whenever nothing is pending.
    A lost database is waited for; any other error propagates (run it under a
    `meterhub.supervise.Supervisor`, which logs it and starts the worker again).
    ``on_pass`` is told what each committed pass did (a benchmark reads its latencies)."""
    stop = stop or asyncio.Event()
    registry = MeterRegistry()
    conn: asyncpg.Connection | None = None
    measured = 0.0
    token = RUNNING.enter()
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(settings.dsn(), timeout=5)
                    await prepare_connection(conn)
                stats = await derive_pending(conn, registry, limit=settings.derive_marks_per_pass)
                RUNNING.passed(token)
                if on_pass is not None and stats.marks:
                    on_pass(stats)
                if stats.marks == 0 or time.monotonic() - measured > BACKLOG_EVERY:
                    await backlog(conn)
                    measured = time.monotonic()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("interval derivation failed; retrying", error=repr(exc))
                if conn is not None:
                    conn.terminate()
                conn = None
                stats = _NOTHING
            if stats.marks == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)
    except BaseException:
        if conn is not None:
            conn.terminate()  # no connection left behind by a crash or a cancellation
        raise
    finally:
        RUNNING.leave(token)
    if conn is not None:
        await conn.close()

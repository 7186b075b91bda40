"""One batch into the database: validate (as columns), COPY, merge what may repeat stored
readings, record what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

import asyncpg
import numpy as np
import orjson
from numpy.typing import NDArray

from ingest import metrics, pgcopy
from ingest import quarantine as q
from ingest.columns import ReadingColumns, from_readings
from ingest.interval_grid import to_micros
from ingest.outcome import Rejection, SubmitResult
from ingest.registry import MeterRegistry
from ingest.screen import surely_good
from meterhub.reading import READING_COLUMNS, VALUE_FIELDS, Reading

STAGE = "ingest_stage"
_COLS = ", ".join(READING_COLUMNS)
_STAGE_COLUMNS = (*READING_COLUMNS, "chunk")

MISSED = "ingest_missed"
CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE}
    (LIKE readings INCLUDING DEFAULTS, chunk integer NOT NULL) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {MISSED} (LIKE {STAGE}) ON COMMIT DELETE ROWS
"""
# Merge the stage; the rows whose key already existed (RETURNING tells which were new) go
# to the small `missed` table, so that only they are looked up again below.
_MERGE = f"""
WITH inserted AS (
    INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM {STAGE}
    ON CONFLICT DO NOTHING RETURNING meter_id, ts
)
INSERT INTO {MISSED}
SELECT s.* FROM {STAGE} s
LEFT JOIN inserted i ON i.meter_id = s.meter_id AND i.ts = s.ts
WHERE i.meter_id IS NULL
"""
_S_VALUES = ", ".join(f"s.{name}" for name in VALUE_FIELDS)
_R_VALUES = ", ".join(f"r.{name}" for name in VALUE_FIELDS)
# A missed row identical to the stored one is a duplicate; a different one is a conflict,
# which is logged (the stored reading stays).
_NOT_INSERTED = f"""
WITH not_inserted AS (
    SELECT s.chunk, s.meter_id, s.ts, s.source,
           ({_S_VALUES}) IS DISTINCT FROM ({_R_VALUES}) AS conflicting,
           to_jsonb(r) AS existing, to_jsonb(s) - 'chunk' AS incoming
    FROM {MISSED} s
    JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
), logged AS (
    INSERT INTO reading_conflicts (meter_id, ts, source, existing, incoming)
    SELECT meter_id, ts, source, existing, incoming FROM not_inserted WHERE conflicting
)
SELECT chunk, conflicting, count(*) AS n FROM not_inserted GROUP BY chunk, conflicting
"""
_LOG_CONFLICT = """
INSERT INTO reading_conflicts (meter_id, ts, source, existing, incoming)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
"""


@dataclass(slots=True)
class Batch:
    """Readings of several `submit` calls (chunks) plus payload-level quarantine records."""

    chunks: list[Sequence[Reading]]
    rejects: list[q.QuarantineRecord]

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass(frozen=True, slots=True)
class _Spans:
    meter_id: NDArray[np.int64]
    first: NDArray[np.int64]
    last: NDArray[np.int64]


@dataclass(slots=True)
class _Prepared:
    """Row numbers (into ``columns``) by destination. ``fresh`` rows are newer than
    anything this process has committed for their meter: they are COPYed straight into
    `readings`; ``staged`` rows may repeat stored ones and take the staging + merge path.
    ``spans`` are the accepted rows' time ranges per meter (for interval derivation)."""

    columns: ReadingColumns
    chunk: NDArray[np.int64]
    fresh: NDArray[np.intp]
    staged: NDArray[np.intp]
    spans: _Spans
    quarantined: list[q.QuarantineRecord]
    in_batch_conflicts: list[tuple[Reading, Reading]]
    results: list[SubmitResult]


def prepare(
    batch: Batch,
    columns: ReadingColumns,
    registry: MeterRegistry,
    *,
    now: datetime,
    future_tolerance: timedelta,
) -> _Prepared:
    """Validate and de-duplicate ``columns`` (the batch's readings) within the batch; what
    is left goes to COPY."""
    results = [SubmitResult() for _ in batch.chunks]
    sizes = [len(chunk) for chunk in batch.chunks]
    chunk = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    starts = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
    meters, meter = np.unique(columns.meter_id, return_inverse=True)
    limits = registry.limits(meters)
    good = surely_good(columns, limits, meter, to_micros(now + future_tolerance))
    quarantined = list(batch.rejects)
    for row in np.flatnonzero(~good).tolist():
        record = _judge(columns, row, registry, now=now, future_tolerance=future_tolerance)
        if record is None:
            good[row] = True
            continue
        quarantined.append(record)
        rejection = Rejection(row - int(starts[chunk[row]]), record.reason, record.detail)
        results[chunk[row]].rejected.append(rejection)
    kept, conflicts = _deduplicate(columns, np.flatnonzero(good), chunk, results)
    for count, result in zip(np.bincount(chunk[kept], minlength=len(sizes)), results, strict=True):
        result.accepted = int(count)
    fresh = columns.ts[kept] > limits.committed[meter[kept]]
    return _Prepared(
        columns=columns,
        chunk=chunk,
        fresh=kept[fresh],
        staged=kept[~fresh],
        spans=_spans(columns, kept),
        quarantined=quarantined,
        in_batch_conflicts=conflicts,
        results=results,
    )


def _judge(
    columns: ReadingColumns,
    row: int,
    registry: MeterRegistry,
    *,
    now: datetime,
    future_tolerance: timedelta,
) -> q.QuarantineRecord | None:
    """The one-by-one verdict on a row the screen did not pass."""
    reading = columns.reading(row)
    meter = registry.get(reading.meter_id) if isinstance(reading.meter_id, int) else None
    record = q.check(reading, meter, now=now, future_tolerance=future_tolerance)
    if record is None and columns.broken[row]:  # a type the columns cannot carry
        return q.quarantine(reading, q.Reason.WRONG_TYPE, "a field has an unsupported type")
    return record


def _deduplicate(
    columns: ReadingColumns,
    rows: NDArray[np.intp],
    chunk: NDArray[np.int64],
    results: list[SubmitResult],
) -> tuple[NDArray[np.intp], list[tuple[Reading, Reading]]]:
    """The first row of each (meter, time) key, ordered by key; later ones are counted as
    duplicates (same values) or conflicts (different values, also returned)."""
    order = rows[np.lexsort((columns.ts[rows], columns.meter_id[rows]))]  # stable: first wins
    meter_id, ts = columns.meter_id[order], columns.ts[order]
    repeat = np.zeros(len(order), dtype=np.bool_)
    repeat[1:] = (meter_id[1:] == meter_id[:-1]) & (ts[1:] == ts[:-1])
    conflicts: list[tuple[Reading, Reading]] = []
    if not repeat.any():
        return order, conflicts
    positions = np.arange(len(order))
    run_start = np.maximum.accumulate(np.where(repeat, 0, positions))
    for pos in np.flatnonzero(repeat).tolist():
        first, row = int(order[run_start[pos]]), int(order[pos])
        result = results[chunk[row]]
        if columns.same_values(first, row):
            result.duplicates += 1
        else:
            result.conflicts += 1
            conflicts.append((columns.reading(first), columns.reading(row)))
    return order[~repeat], conflicts


def _spans(columns: ReadingColumns, kept: NDArray[np.intp]) -> _Spans:
    """First and last time per meter of ``kept`` (ordered by meter, then time)."""
    meter_id, ts = columns.meter_id[kept], columns.ts[kept]
    if len(kept) == 0:
        return _Spans(meter_id, ts, ts)
    starts = np.flatnonzero(np.diff(meter_id, prepend=meter_id[0] - 1))
    ends = np.append(starts[1:] - 1, len(kept) - 1)
    return _Spans(meter_id[starts], ts[starts], ts[ends])


#: The batch's one dirty mark: its meters and each one's range (epoch microseconds). It is
#: the transaction's last statement and its time the clock's (not the transaction's start,
#: `now()`), the nearest to the commit there is: committed -> queryable latencies are
#: measured from it.
MARK_BATCH = """
INSERT INTO interval_dirty (marked_at, meter_ids, ts_mins, ts_maxs)
SELECT clock_timestamp(), $1::bigint[],
       array(SELECT timestamptz 'epoch' + t * interval '1 microsecond'
             FROM unnest($2::bigint[]) WITH ORDINALITY AS u(t, i) ORDER BY i),
       array(SELECT timestamptz 'epoch' + t * interval '1 microsecond'
             FROM unnest($3::bigint[]) WITH ORDINALITY AS u(t, i) ORDER BY i)
"""


def _jsonb(reading: Reading) -> str:
    return orjson.dumps(reading._asdict()).decode()


async def write(
    conn: asyncpg.Connection,
    batch: Batch,
    registry: MeterRegistry,
    *,
    future_tolerance: timedelta,
    mark_dirty: bool = True,
) -> list[SubmitResult]:
    """Write ``batch`` in one transaction; returns one result per chunk.

    Counts are exact: every submitted reading ends as accepted, duplicate, conflict or
    rejected (quarantined).
    """
    columns = from_readings(list(chain.from_iterable(batch.chunks)))
    await registry.refresh(conn, np.unique(columns.meter_id).tolist())
    now = await conn.fetchval("SELECT now()")
    prepared = prepare(batch, columns, registry, now=now, future_tolerance=future_tolerance)
    async with conn.transaction():
        if len(prepared.fresh):
            await _copy_fresh(conn, prepared)
        if len(prepared.staged):
            await _copy(conn, STAGE, _STAGE_COLUMNS, _staged_columns(prepared))
            status = await conn.execute(_MERGE)
            if int(status.rsplit(" ", 1)[1]) > 0:  # how many rows were not new
                await _account_not_inserted(conn, prepared)
        if prepared.quarantined:
            await conn.copy_records_to_table(
                "quarantine",
                records=[record.as_row() for record in prepared.quarantined],
                columns=q.QUARANTINE_COLUMNS,
            )
        if prepared.in_batch_conflicts:
            await conn.executemany(
                _LOG_CONFLICT,
                [
                    (b.meter_id, b.ts, b.source, _jsonb(a), _jsonb(b))
                    for a, b in prepared.in_batch_conflicts
                ],
            )
        spans = prepared.spans
        if mark_dirty and len(spans.meter_id):
            await conn.execute(
                MARK_BATCH, spans.meter_id.tolist(), spans.first.tolist(), spans.last.tolist()
            )
    registry.note_committed(spans.meter_id, spans.last)
    metrics.COPIED.labels("fast").inc(len(prepared.fresh))
    metrics.COPIED.labels("merge").inc(len(prepared.staged))
    return prepared.results


async def _copy(
    conn: asyncpg.Connection, table: str, names: Sequence[str], columns: list[pgcopy.Column]
) -> None:
    # asyncpg sends a buffer as it is (bytes would be taken for a path; its stubs list only
    # files and async iterables).
    data = memoryview(pgcopy.encode(columns))
    await conn.copy_to_table(table, source=data, columns=list(names), format="binary")  # type: ignore[arg-type]


def _staged_columns(prepared: _Prepared) -> list[pgcopy.Column]:
    rows = prepared.staged
    chunk = pgcopy.Column(pgcopy.Kind.INTEGER, prepared.chunk[rows])
    return [*prepared.columns.copy_columns(rows), chunk]


async def _copy_fresh(conn: asyncpg.Connection, prepared: _Prepared) -> None:
    """COPY the fresh rows straight into `readings` (the fast path: no staging, no merge).
    If one of them exists after all (written by another process, or before a restart), the
    savepoint is rolled back and they all take the staging path."""
    try:
        async with conn.transaction():
            columns = prepared.columns.copy_columns(prepared.fresh)
            await _copy(conn, "readings", READING_COLUMNS, columns)
    except asyncpg.UniqueViolationError:
        prepared.staged = np.concatenate((prepared.staged, prepared.fresh))
        prepared.fresh = prepared.fresh[:0]


async def _account_not_inserted(conn: asyncpg.Connection, prepared: _Prepared) -> None:
    rows = await conn.fetch(_NOT_INSERTED)
    for row in rows:
        result = prepared.results[row["chunk"]]
        result.accepted -= row["n"]
        if row["conflicting"]:
            result.conflicts += row["n"]
        else:
            result.duplicates += row["n"]


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up for writers: the temporary staging table."""
    await conn.execute(CREATE_STAGE)

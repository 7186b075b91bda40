"""One batch into the database: validate, COPY into staging, merge, record what happened."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import asyncpg
import orjson

from ingest import quarantine as q
from ingest.outcome import Rejection, SubmitResult
from ingest.registry import MeterRegistry
from meterhub.reading import LOCAL_TZ, READING_COLUMNS, VALUE_FIELDS, Reading

STAGE = "ingest_stage"
_COLS = ", ".join(READING_COLUMNS)
_STAGE_COLUMNS = (*READING_COLUMNS, "chunk")
_row = operator.attrgetter(*READING_COLUMNS)
_values = operator.attrgetter(*VALUE_FIELDS)

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


@dataclass(slots=True)
class _Prepared:
    """``fresh`` rows are newer than anything this process has committed for their meter:
    they are COPYed straight into `readings`; ``rows`` (with their chunk number) may
    repeat stored ones and take the staging + merge path."""

    rows: list[tuple[object, ...]]
    quarantined: list[q.QuarantineRecord]
    in_batch_conflicts: list[tuple[Reading, Reading]]
    results: list[SubmitResult]
    fresh: list[tuple[object, ...]] = field(default_factory=list)
    fresh_chunks: list[int] = field(default_factory=list)
    ranges: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)


def prepare(
    batch: Batch, registry: MeterRegistry, *, now: datetime, future_tolerance: timedelta
) -> _Prepared:
    """Validate and de-duplicate within the batch; what is left goes to COPY."""
    prepared = _Prepared([], list(batch.rejects), [], [SubmitResult() for _ in batch.chunks])
    seen: dict[tuple[int, datetime], Reading] = {}
    meters, committed, ranges = registry.meters, registry.committed, prepared.ranges
    # In the zone most readings carry, so that comparisons need no UTC-offset lookups.
    latest = (now + future_tolerance).astimezone(LOCAL_TZ)
    for chunk_no, chunk in enumerate(batch.chunks):
        result = prepared.results[chunk_no]
        for index, reading in enumerate(chunk):
            meter = meters.get(reading.meter_id)
            ts = reading.ts
            if (
                meter is None
                or ts.tzinfo is None
                or not meter.installed_at <= ts <= latest
                or (meter.removed_at is not None and ts > meter.removed_at)
                or not q.plausible(reading, meter)
            ):
                record = q.check(reading, meter, now=now, future_tolerance=future_tolerance)
                if record is not None:
                    prepared.quarantined.append(record)
                    result.rejected.append(Rejection(index, record.reason, record.detail))
                    continue
            key = (reading.meter_id, reading.ts)
            first = seen.get(key)
            if first is not None:
                if _values(first) == _values(reading):
                    result.duplicates += 1
                else:
                    result.conflicts += 1
                    prepared.in_batch_conflicts.append((first, reading))
                continue
            seen[key] = reading
            result.accepted += 1
            row = _row(reading)
            newest = committed.get(reading.meter_id)
            if newest is not None and ts <= newest:
                prepared.rows.append((*row, chunk_no))
            else:
                prepared.fresh.append(row)
                prepared.fresh_chunks.append(chunk_no)
            span = ranges.get(reading.meter_id)
            if span is None:
                ranges[reading.meter_id] = (ts, ts)
            elif ts < span[0]:
                ranges[reading.meter_id] = (ts, span[1])
            elif ts > span[1]:
                ranges[reading.meter_id] = (span[0], ts)
    return prepared


def _jsonb(reading: Reading) -> str:
    return orjson.dumps(asdict(reading)).decode()


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
    meter_ids = {reading.meter_id for chunk in batch.chunks for reading in chunk}
    await registry.refresh(conn, meter_ids)
    now = await conn.fetchval("SELECT now()")
    prepared = prepare(batch, registry, now=now, future_tolerance=future_tolerance)
    async with conn.transaction():
        if prepared.fresh:
            await _copy_fresh(conn, prepared)
        if prepared.rows:
            await conn.copy_records_to_table(STAGE, records=prepared.rows, columns=_STAGE_COLUMNS)
            status = await conn.execute(_MERGE)
            if int(status.rsplit(" ", 1)[1]) > 0:  # how many rows were not new
                await _account_not_inserted(conn, prepared)
        if mark_dirty and prepared.ranges:
            await conn.copy_records_to_table(
                "interval_dirty",
                records=[(m, lo, hi) for m, (lo, hi) in prepared.ranges.items()],
                columns=("meter_id", "ts_min", "ts_max"),
            )
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
    registry.note_committed(prepared.ranges)
    return prepared.results


async def _copy_fresh(conn: asyncpg.Connection, prepared: _Prepared) -> None:
    """COPY the fresh rows straight into `readings` (the fast path: no staging, no merge).
    If one of them exists after all (written by another process, or before a restart), the
    savepoint is rolled back and they all take the staging path."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "readings", records=prepared.fresh, columns=READING_COLUMNS
            )
    except asyncpg.UniqueViolationError:
        prepared.rows += [
            (*row, chunk) for row, chunk in zip(prepared.fresh, prepared.fresh_chunks, strict=True)
        ]
        prepared.fresh = []


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

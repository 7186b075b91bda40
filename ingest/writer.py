"""One batch into the database: validate, COPY into staging, merge, record what happened."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson

from ingest import quarantine as q
from ingest.outcome import Rejection, SubmitResult
from ingest.registry import MeterRegistry
from meterhub.reading import READING_COLUMNS, VALUE_FIELDS, Reading

STAGE = "ingest_stage"
_COLS = ", ".join(READING_COLUMNS)
_STAGE_COLUMNS = (*READING_COLUMNS, "chunk")
_row = operator.attrgetter(*READING_COLUMNS)
_values = operator.attrgetter(*VALUE_FIELDS)

CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE}
    (LIKE readings INCLUDING DEFAULTS, chunk integer NOT NULL) ON COMMIT DELETE ROWS
"""
_MERGE = f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM {STAGE} ON CONFLICT DO NOTHING"
_S_VALUES = ", ".join(f"s.{name}" for name in VALUE_FIELDS)
_R_VALUES = ", ".join(f"r.{name}" for name in VALUE_FIELDS)
# Rows of the stage that were not inserted (their key existed before this transaction):
# an identical row is a duplicate, a different one a conflict, which is logged.
_NOT_INSERTED = f"""
WITH not_inserted AS (
    SELECT s.chunk, s.meter_id, s.ts, s.source,
           ({_S_VALUES}) IS DISTINCT FROM ({_R_VALUES}) AS conflicting,
           to_jsonb(r) AS existing, to_jsonb(s) - 'chunk' AS incoming
    FROM {STAGE} s
    JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
    WHERE r.ts BETWEEN $1 AND $2 AND r.xmin <> pg_current_xact_id()::xid
), logged AS (
    INSERT INTO reading_conflicts (meter_id, ts, source, existing, incoming)
    SELECT meter_id, ts, source, existing, incoming FROM not_inserted WHERE conflicting
)
SELECT chunk, conflicting, count(*) AS n FROM not_inserted GROUP BY chunk, conflicting
"""
_MARK_DIRTY = f"""
INSERT INTO interval_dirty (meter_id, ts_min, ts_max)
SELECT meter_id, min(ts), max(ts) FROM {STAGE} GROUP BY meter_id
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
    rows: list[tuple[object, ...]]
    quarantined: list[q.QuarantineRecord]
    in_batch_conflicts: list[tuple[Reading, Reading]]
    results: list[SubmitResult]
    ts_min: datetime | None = None
    ts_max: datetime | None = None


def prepare(
    batch: Batch, registry: MeterRegistry, *, now: datetime, future_tolerance: timedelta
) -> _Prepared:
    """Validate and de-duplicate within the batch; what is left goes to COPY."""
    prepared = _Prepared([], list(batch.rejects), [], [SubmitResult() for _ in batch.chunks])
    seen: dict[tuple[int, datetime], Reading] = {}
    for chunk_no, chunk in enumerate(batch.chunks):
        result = prepared.results[chunk_no]
        for index, reading in enumerate(chunk):
            record = q.check(
                reading, registry.get(reading.meter_id), now=now, future_tolerance=future_tolerance
            )
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
            prepared.rows.append((*_row(reading), chunk_no))
            result.accepted += 1
    if seen:
        stamps = [key[1] for key in seen]
        prepared.ts_min, prepared.ts_max = min(stamps), max(stamps)
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
        if prepared.rows:
            await conn.copy_records_to_table(STAGE, records=prepared.rows, columns=_STAGE_COLUMNS)
            status = await conn.execute(_MERGE)
            inserted = int(status.rsplit(" ", 1)[1])
            if inserted < len(prepared.rows):
                await _account_not_inserted(conn, prepared)
            if mark_dirty:
                await conn.execute(_MARK_DIRTY)
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
    return prepared.results


async def _account_not_inserted(conn: asyncpg.Connection, prepared: _Prepared) -> None:
    rows = await conn.fetch(_NOT_INSERTED, prepared.ts_min, prepared.ts_max)
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

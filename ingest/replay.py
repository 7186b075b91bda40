"""Replaying one spool segment into the database, exactly once per record.

Each record is written in one transaction together with its row in `spool_replay`
(segment id, record end): a replay interrupted half way (the database restarted, the
process killed) resumes with the records not committed yet, and no reading, quarantine or
conflict row is inserted twice. A clean segment is then removed (and its progress rows
deleted); one with damaged records is set aside in ``corrupt/`` whole, after every intact
record was replayed (its progress rows stay, so a repaired segment put back replays only
what was missing).
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from ingest import batch_codec, metrics
from ingest.outcome import SubmitResult
from ingest.segment import scan_segment
from ingest.spool import Spool
from ingest.writer import Batch
from meterhub.logs import get_logger

log = get_logger(__name__)

WriteBatch = Callable[[asyncpg.Connection, Batch], Awaitable[list[SubmitResult]]]

#: What decoding a checksummed but unreadable record raises (another codec version, ...).
_UNDECODABLE = (pickle.UnpicklingError, ValueError, TypeError, EOFError)

_REPLAY_DONE = "SELECT record_end FROM spool_replay WHERE segment = $1"
_REPLAY_ADVANCE = """
INSERT INTO spool_replay (segment, record_end) VALUES ($1, $2) ON CONFLICT DO NOTHING
"""
_REPLAY_FORGET = "DELETE FROM spool_replay WHERE segment = $1"


async def replay_segment(
    conn: asyncpg.Connection,
    path: Path,
    *,
    spool: Spool,
    write_batch: WriteBatch,
    count: Callable[[list[SubmitResult]], None],
) -> None:
    """Replay a segment's intact records, each in one transaction with its progress row
    (so that an interrupted replay resumes and doubles nothing); then remove the segment,
    or set it aside in ``corrupt/`` if a record in it is damaged."""
    scan = await asyncio.to_thread(scan_segment, path)
    done = {row["record_end"] for row in await conn.fetch(_REPLAY_DONE, scan.segment_id)}
    undecodable = 0
    for entry in scan.entries:
        if entry.end in done:
            metrics.REPLAY_SKIPPED_RECORDS.inc()
            continue
        try:
            batch = batch_codec.decode(entry.payload)
        except _UNDECODABLE:
            undecodable += 1
            continue
        async with conn.transaction():
            results = await write_batch(conn, batch)
            await conn.execute(_REPLAY_ADVANCE, scan.segment_id, entry.end)
        count(results)
        metrics.REPLAYED_BATCHES.inc()
    if scan.torn_bytes:
        metrics.TORN_RECORDS.inc()
        log.warning(
            "spool segment ends in a torn record (an append that never returned); "
            "it was never acknowledged and is not replayed",
            segment=str(scan.path),
            torn_bytes=scan.torn_bytes,
        )
    if scan.corrupt_records or undecodable:
        moved = await asyncio.to_thread(spool.set_aside, scan.path)
        metrics.CORRUPT_RECORDS.inc(scan.corrupt_records + undecodable)
        metrics.CORRUPT_SEGMENTS_TOTAL.inc()
        log.error(
            "spool segment has damaged records; its intact records are replayed and "
            "the segment is kept for inspection",
            segment=str(moved),
            corrupt_records=scan.corrupt_records,
            undecodable_records=undecodable,
            corrupt_bytes=scan.corrupt_bytes,
            intact_records=len(scan.entries) - undecodable,
        )
    else:
        spool.remove(scan.path)
        await conn.execute(_REPLAY_FORGET, scan.segment_id)

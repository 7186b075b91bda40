"""A batch the database refused as a whole (a value it cannot store, e.g. a NUL in a text):
halve it until each refused reading stands alone, quarantine those, keep the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from ingest.outcome import Rejection, SubmitResult
from ingest.quarantine import Reason, quarantine
from ingest.writer import Batch
from meterhub.db import CONNECTION_ERRORS
from meterhub.reading import Reading

__all__ = ["CONNECTION_ERRORS", "write_isolating"]

Write = Callable[[Batch], Awaitable[list[SubmitResult]]]


async def write_isolating(write: Write, batch: Batch) -> list[SubmitResult]:
    """Write ``batch`` piecewise with ``write``; one result per chunk, with every reading
    accounted for (the refused ones as ``database_rejected``). Connection errors propagate."""
    results = [SubmitResult() for _ in batch.chunks]

    async def attempt(chunk_no: int, items: list[tuple[int, Reading]]) -> None:
        try:
            (sub,) = await write(Batch([[r for _, r in items]], []))
        except CONNECTION_ERRORS:
            raise
        except asyncpg.PostgresError as exc:
            if len(items) > 1:
                await attempt(chunk_no, items[: len(items) // 2])
                await attempt(chunk_no, items[len(items) // 2 :])
                return
            index, reading = items[0]
            record = quarantine(reading, Reason.DATABASE_REJECTED, f"{type(exc).__name__}: {exc}")
            await write(Batch([], [record]))
            results[chunk_no].rejected.append(Rejection(index, record.reason, record.detail))
            return
        _merge_into(results[chunk_no], sub, [index for index, _ in items])

    if batch.rejects:
        await write(Batch([], batch.rejects))
    for chunk_no, chunk in enumerate(batch.chunks):
        if chunk:
            await attempt(chunk_no, list(enumerate(chunk)))
    return results


def _merge_into(result: SubmitResult, sub: SubmitResult, indexes: list[int]) -> None:
    """Fold a sub-batch's result into its chunk's; ``indexes`` maps sub positions to the chunk."""
    result.accepted += sub.accepted
    result.duplicates += sub.duplicates
    result.conflicts += sub.conflicts
    result.rejected += [Rejection(indexes[r.index], r.reason, r.detail) for r in sub.rejected]

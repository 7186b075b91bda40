"""Process-wide tuning for meterhub's long-running services."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")

#: Rows a bulk (re)load turns into objects between two turns of the event loop (about
#: 10-20 ms of work: a collector's DL/T 645 buses wait for the loop meanwhile).
SLICE = 1_000


#: Collection thresholds (`gc.set_threshold`) for the long-running services: a young
#: collection every 50,000 allocations instead of 700, and older ones less often too.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Move everything alive at start-up out of the collector's sight, and collect less often.

    Full collections then only scan what the service allocated since; the long-lived
    start-up heap (modules, registries, a benchmark's workload) is never re-scanned. With
    the default thresholds a collector polling 60,000 meters a minute spent 10-12 s of each
    minute collecting (every poll allocates coroutines, futures, timers and dicts, and
    thousands of polls are in flight at once, so young objects keep surviving into older
    generations), with 11-18 full collections of up to 0.46 s each, during which no bus
    was served; with `GC_THRESHOLDS` about 1 s, and no full collection in a minute
    (bench/collect.py, 2026-12-03). Call once, after start-up.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (restored after, if it was on).

    For short synchronous bursts that allocate many acyclic containers (turning a batch of
    readings into columns): the collections they trigger would otherwise cost more than
    the work itself (measured: about twice the time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def in_slices(items: Sequence[_T], size: int = SLICE) -> AsyncIterator[Sequence[_T]]:
    """``items`` a slice at a time, letting the event loop run between slices.

    For whole-registry reloads in a process that also polls meters: 60,000 rows turned
    into objects in one go held the loop for about a second, and every bus that was
    waiting for its reply to be read lost that second. Example::

        async for rows in in_slices(await conn.fetch(query)):
            meters.update((row["id"], build(row)) for row in rows)
    """
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + size]

"""Dirty ranges (`interval_dirty`): claiming them for one derivation pass, and the backlog.

Several derivation workers may run at once. A pass claims, inside its transaction, the
oldest unclaimed marks (``FOR UPDATE SKIP LOCKED``) of the meters whose per-meter advisory
lock it gets without waiting, and deletes exactly those marks; it holds the meter locks until
it commits. So no two passes derive one meter at the same time, every mark is derived by the
pass that deleted it (a crash rolls the delete back), and marks left behind (of a meter
another pass holds, or past the limit) wait for a later pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np
from numpy.typing import NDArray

from ingest.metrics import DIRTY_OLDEST_AGE, DIRTY_RANGES

#: The advisory lock space (first key) of the per-meter derivation locks.
METER_LOCK_SPACE = 0x6D687563

_CLAIM = """
WITH head AS (
    SELECT id, meter_id FROM interval_dirty ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
), meters AS (
    SELECT DISTINCT meter_id FROM head
), claimed AS (
    SELECT meter_id FROM meters
    WHERE pg_try_advisory_xact_lock($1, (meter_id % 2147483647)::int)
)
, taken AS (
    DELETE FROM interval_dirty d USING head h, claimed c
    WHERE d.id = h.id AND h.meter_id = c.meter_id
    RETURNING d.meter_id, d.ts_min, d.ts_max, d.marked_at
)
SELECT meter_id, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
       array_agg(extract(epoch FROM marked_at)::float8) AS marked
FROM taken GROUP BY meter_id
"""

#: Ranges pending (counted up to a bound: a probe must stay cheap) and the oldest's age.
_BACKLOG = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM interval_dirty LIMIT $1) AS c) AS ranges,
       coalesce(extract(epoch FROM now() - (SELECT marked_at FROM interval_dirty
                                             ORDER BY id LIMIT 1)), 0)::float8 AS oldest_age
"""
BACKLOG_COUNT_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Claim:
    """The marks one pass took: merged into one range per meter, and when each was marked
    (epoch seconds, one value per mark)."""

    ranges: dict[int, tuple[datetime, datetime]]
    marked: NDArray[np.float64]

    @property
    def marks(self) -> int:
        return len(self.marked)


async def claim(conn: asyncpg.Connection, *, limit: int) -> Claim:
    """Take up to ``limit`` of the oldest marks free for this pass; call in its transaction.

    The marks are merged per meter by the server: a pass of 200,000 marks receives one row
    per meter, not one per mark."""
    rows = await conn.fetch(_CLAIM, METER_LOCK_SPACE, limit)
    ranges = {row["meter_id"]: (row["ts_min"], row["ts_max"]) for row in rows}
    marked = [t for row in rows for t in row["marked"]]
    return Claim(ranges, np.array(marked, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class Backlog:
    ranges: int
    oldest_age: float  # seconds; 0 when nothing is pending


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> Backlog:
    """The dirty ranges pending now (also sets the backlog gauges)."""
    row = await conn.fetchrow(_BACKLOG, BACKLOG_COUNT_LIMIT)
    assert row is not None
    DIRTY_RANGES.set(row["ranges"])
    DIRTY_OLDEST_AGE.set(row["oldest_age"])
    return Backlog(row["ranges"], row["oldest_age"])

"""Dirty ranges (`interval_dirty`): claiming them for one derivation pass, and the backlog.

A mark is what one reading batch changed: its meters and each one's time range, as
parallel arrays in one row (migration 0015). Several derivation workers may run at once. A
pass claims, inside its transaction, the oldest marks no other pass has locked
(``FOR UPDATE SKIP LOCKED``), up to a number of ranges, deletes them, and keeps the ranges of
the meters whose per-meter advisory lock it gets without waiting; the others' ranges it puts
back as new marks with their original time. It holds the meter locks until it commits. So
no two passes derive one meter at the same time, every range is derived by the pass that
kept it (a crash rolls the delete and the put-back back), and ranges left behind (of a
meter another pass holds, or past the limit) wait for a later pass.
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

# The pass takes the oldest marks no other pass holds until they hold ``$2`` ranges
# (`take_dirty_marks`; at least one mark), keeps up to ``$2`` of their meters whose lock it
# gets (`lock_dirty_meters`, both in migration 0015) and puts the other meters' ranges back
# as new marks (same marked_at) for a later pass. It returns one row per kept meter (its
# merged range) and one per taken mark (when it was marked and how many ranges were kept:
# the weight of its latency), the marks' rows with a NULL meter.
_CLAIM = """
WITH head AS (
    SELECT unnest(take_dirty_marks($2::integer)) AS id
), taken AS (
    DELETE FROM interval_dirty d USING head h WHERE d.id = h.id
    RETURNING d.id, d.marked_at, d.meter_ids, d.ts_mins, d.ts_maxs
), ranges AS (
    SELECT t.id, t.marked_at, u.meter_id, u.ts_min, u.ts_max
    FROM taken t, unnest(t.meter_ids, t.ts_mins, t.ts_maxs) AS u(meter_id, ts_min, ts_max)
), merged AS (
    SELECT meter_id, min(ts_min) AS ts_min, max(ts_max) AS ts_max FROM ranges GROUP BY meter_id
), mine AS (
    SELECT unnest(lock_dirty_meters($1::integer, coalesce(
        (SELECT array_agg(meter_id ORDER BY meter_id) FROM merged), '{}'), $2::integer))
        AS meter_id
), put_back AS (
    INSERT INTO interval_dirty (marked_at, meter_ids, ts_mins, ts_maxs)
    SELECT r.marked_at, array_agg(r.meter_id), array_agg(r.ts_min), array_agg(r.ts_max)
    FROM ranges r WHERE NOT EXISTS (SELECT FROM mine WHERE mine.meter_id = r.meter_id)
    GROUP BY r.marked_at
)
SELECT m.meter_id, m.ts_min, m.ts_max, NULL::float8 AS marked, NULL::bigint AS kept
FROM merged m JOIN mine USING (meter_id)
UNION ALL
SELECT NULL, NULL, NULL, extract(epoch FROM min(r.marked_at))::float8, count(*)
FROM ranges r JOIN mine USING (meter_id)
GROUP BY r.id
"""

#: Ranges pending (summed over a bounded number of marks: a probe must stay cheap) and the
#: oldest's age.
_BACKLOG = """
SELECT (SELECT coalesce(sum(ranges), 0) FROM (SELECT ranges FROM interval_dirty LIMIT $1) AS c)
           AS ranges,
       coalesce(extract(epoch FROM now() - (SELECT min(marked_at) FROM interval_dirty)),
                0)::float8 AS oldest_age
"""
BACKLOG_COUNT_LIMIT = 100_000  # marks (reading batches)


@dataclass(frozen=True, slots=True)
class Claim:
    """The marks one pass took: merged into one range per meter; when each mark was made
    (epoch seconds) and how many of its ranges the pass kept."""

    ranges: dict[int, tuple[datetime, datetime]]
    marked: NDArray[np.float64]
    kept: NDArray[np.int64]

    @property
    def marks(self) -> int:
        return len(self.marked)


async def claim(conn: asyncpg.Connection, *, limit: int) -> Claim:
    """Take up to ``limit`` of the oldest marks free for this pass; call in its transaction.

    The marks are merged per meter by the server: a pass of 200,000 ranges receives one row
    per meter and one per mark, not one per range."""
    rows = await conn.fetch(_CLAIM, METER_LOCK_SPACE, limit)
    ranges = {r["meter_id"]: (r["ts_min"], r["ts_max"]) for r in rows if r["meter_id"] is not None}
    marks = [(r["marked"], r["kept"]) for r in rows if r["meter_id"] is None]
    return Claim(
        ranges,
        np.array([t for t, _ in marks], dtype=np.float64),
        np.array([k for _, k in marks], dtype=np.int64),
    )


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

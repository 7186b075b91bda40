"""Daily and monthly rollups per town, refreshed with the firm rollups they sum.

A town's bucket is the sum of the firm rollups of the firms that belonged to the town at
the bucket's start (`firm_towns`): the attribution by period of the trend queries, stored.
The table, the re-summing function `refresh_town_rollups` (under per-town locks) and the
triggers that re-sum after a firm moves are in migration 0013. Here: which town buckets a
set of firm ranges touches, in the pass that replaced those firm rollups
(`ingest.rollups`), or after firm rollups were written by other means (a history import).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

# Buckets of firm range [b0, b1) belong to each town period they start in. Towns keep days
# and months; a town's hours are summed from firm rollups when asked.
_REFRESH = """
SELECT refresh_town_rollups(array_agg(r.granularity), array_agg(ft.town), array_agg(r.utility),
                            array_agg(greatest(r.b0, ft.valid_from)),
                            array_agg(least(r.b1, ft.valid_to)))
FROM {ranges}
JOIN firm_towns ft ON ft.firm_id = r.firm_id AND ft.valid_from < r.b1 AND ft.valid_to > r.b0
WHERE r.granularity IN ('day', 'month')
"""
_OF_PASS = _REFRESH.format(ranges="rollup_firm_ranges AS r")
_OF_RANGES = _REFRESH.format(
    ranges="unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[])"
    " AS r(granularity, firm_id, utility, b0, b1)"
)


async def refresh_town_rollups(conn: asyncpg.Connection) -> None:
    """Re-sum the town buckets of the firm ranges of this pass (``rollup_firm_ranges``),
    whose firm rollups it has just replaced under the firms' locks."""
    await conn.execute(_OF_PASS)


async def refresh_town_rollups_for(
    conn: asyncpg.Connection, ranges: Sequence[tuple[str, int, str, datetime, datetime]]
) -> None:
    """Re-sum the town buckets of ``ranges`` (granularity, firm, utility, start, end) after
    firm rollups were written by other means than a derivation pass. Call inside the
    transaction that wrote them: the firms' locks are taken here and held to its end."""
    if not ranges:
        return
    await conn.execute("SELECT lock_firm_rollups($1::bigint[])", [r[1] for r in ranges])
    await conn.execute(_OF_RANGES, *(list(column) for column in zip(*ranges, strict=True)))

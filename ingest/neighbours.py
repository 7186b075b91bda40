"""The nearest energy-bearing reading of many meters before or after a time each, at once.

Steps 1 and 2 of the recompute contract (`ingest.intervals`) look up, per meter, the last
reading before a time and the first after one. One index probe per meter, but on a
hypertable the probe's cost grows with the chunks its plan holds: with only per-row bounds
every chunk of the table is in the plan and excluded again at every probe (0.13 ms a probe
with 25 daily chunks, growing with each day of history). Each look-up here carries literal
bounds as well, so the planner drops the chunks outside them: first the chunks within
`NEAR` of the times (where a meter reporting every few minutes has its neighbour), then,
for the meters without a reading there, the chunks within `LOOKBACK`, whose longer silence
starts a new series. The answer is the same as one look-up within `LOOKBACK`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

#: How far from a time a neighbouring reading is looked for; a longer silence starts a new
#: series.
LOOKBACK = timedelta(days=35)
#: The first, narrow look-up's reach.
NEAR = timedelta(days=1)

# A probe looks between ``near`` and ``reach`` away from its time (literal bounds: the
# chunks there). The far probe runs only for a meter the near one found nothing for
# (coalesce) and only beyond the near reach: for readings arriving in order there is nothing
# after the newest, and no chunk beyond a day later to look in.
_PROBE = """(SELECT r.ts FROM readings r
        WHERE r.meter_id = d.meter_id AND r.energy IS NOT NULL AND r.ts {op} d.t
          AND r.ts {reach_op} d.t {sign} interval '{reach_s} seconds'
          AND r.ts {near_op} d.t {sign} interval '{near_s} seconds'
          AND r.ts >= '{lo}' AND r.ts <= '{hi}'
        ORDER BY r.ts {order} LIMIT 1)"""
_LOOKUP = """
SELECT coalesce({near}, {far}) AS ts
FROM unnest($1::bigint[], $2::timestamptz[]) WITH ORDINALITY AS d(meter_id, t, n)
ORDER BY d.n
"""


async def nearest(
    conn: asyncpg.Connection,
    meter_ids: Sequence[int],
    times: Sequence[datetime],
    *,
    after: bool,
    inclusive: bool,
) -> list[datetime | None]:
    """For each (meter, time): the ts of the meter's nearest energy-bearing reading before
    ``time`` (``after``: after it), at most `LOOKBACK` away, ``time`` itself included when
    ``inclusive``; None where there is none."""
    if not meter_ids:
        return []
    query = _LOOKUP.format(
        near=_probe(times, after=after, inclusive=inclusive, near=timedelta(0), reach=NEAR),
        far=_probe(times, after=after, inclusive=inclusive, near=NEAR, reach=LOOKBACK),
    )
    rows = await conn.fetch(query, list(meter_ids), list(times))
    return [row["ts"] for row in rows]


def _probe(
    times: Sequence[datetime], *, after: bool, inclusive: bool, near: timedelta, reach: timedelta
) -> str:
    """Within ``reach`` of its time and, beyond the time itself, at least ``near`` from it."""
    if after:
        lo, hi = min(times) + near, max(times) + reach
    else:
        lo, hi = min(times) - reach, max(times) - near
    return _PROBE.format(
        op=(">" if after else "<") + ("=" if inclusive else ""),
        reach_op="<=" if after else ">=",
        near_op=">=" if after else "<=",
        sign="+" if after else "-",
        reach_s=int(reach.total_seconds()),
        near_s=int(near.total_seconds()),
        lo=lo.isoformat(),
        hi=hi.isoformat(),
        order="ASC" if after else "DESC",
    )

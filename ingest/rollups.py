"""Hourly, daily and monthly rollups per meter and per firm, refreshed for changed windows.

TimescaleDB's Apache edition has no continuous aggregates, so the interval worker calls
`refresh_rollups` in the same transaction that replaces intervals: the buckets touching each
changed window are re-aggregated from `intervals` (hour, day) and from daily rollups
(month); firm rollups are re-summed from their meters' rollups, and the day and month
rollups of the towns those firms were in from the firm rollups (`ingest.town_rollups`).
Buckets start at Asia/Shanghai boundaries.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from ingest import pgcopy
from ingest.features import refresh_features
from ingest.hour_rollups import COLUMNS as HOUR_COLUMNS
from ingest.hour_rollups import HourSums
from ingest.plans import by_key_probes
from ingest.town_rollups import refresh_town_rollups

WINDOWS = "rollup_windows"

CREATE_WINDOWS = f"""
CREATE TEMP TABLE IF NOT EXISTS {WINDOWS} (
    meter_id bigint NOT NULL, ws timestamptz NOT NULL, we timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""

# Hours are summed straight from intervals, days from hours, months from days.

_BUCKETS = """
CREATE TEMP TABLE IF NOT EXISTS rollup_buckets (
    granularity text, meter_id bigint, b0 timestamptz, b1 timestamptz
) ON COMMIT DELETE ROWS;
INSERT INTO rollup_buckets
SELECT g.granularity, w.meter_id,
       time_bucket(g.width, w.ws, 'Asia/Shanghai'),
       time_bucket(g.width, w.we - interval '1 microsecond', 'Asia/Shanghai') + g.width
FROM rollup_windows w
CROSS JOIN (VALUES ('hour', interval '1 hour'), ('day', interval '1 day'),
                   ('month', interval '1 month')) AS g(granularity, width);
"""

_DELETE_METER = by_key_probes("""
DELETE FROM meter_rollups m USING rollup_buckets b
WHERE m.granularity = b.granularity AND m.meter_id = b.meter_id
  AND m.bucket >= b.b0 AND m.bucket < b.b1
""")

_FROM_INTERVALS = """
INSERT INTO meter_rollups
    (granularity, meter_id, bucket, energy, sharp, peak, flat, valley, estimated, intervals)
SELECT $1, i.meter_id, time_bucket($2::interval, i.start, 'Asia/Shanghai') AS bucket,
       sum(i.energy), sum(i.sharp), sum(i.peak), sum(i.flat), sum(i.valley),
       coalesce(sum(i.energy) FILTER (WHERE i.estimated), 0), count(*)
FROM rollup_buckets b
JOIN intervals i ON i.meter_id = b.meter_id AND i.start >= b.b0 AND i.start < b.b1
WHERE b.granularity = $1 AND i.start >= $3 AND i.start < $4
GROUP BY i.meter_id, bucket
"""

# Days summed from hours, months from days: each level reads 24 or ~30 rows, not 96+.
_ROLL_UP = """
INSERT INTO meter_rollups
    (granularity, meter_id, bucket, energy, sharp, peak, flat, valley, estimated, intervals)
SELECT '{grain}', d.meter_id, {bucket} AS bucket,
       sum(d.energy), sum(d.sharp), sum(d.peak), sum(d.flat), sum(d.valley),
       sum(d.estimated), sum(d.intervals)
FROM rollup_buckets b
JOIN meter_rollups d ON d.granularity = '{source}' AND d.meter_id = b.meter_id
                    AND d.bucket >= b.b0 AND d.bucket < b.b1
WHERE b.granularity = '{grain}'
GROUP BY d.meter_id, 3
"""
# Asia/Shanghai has kept UTC+8 without daylight saving since 1991, so its days are 24-hour
# buckets from a local midnight: the same buckets as time_bucket(..., 'Asia/Shanghai'),
# without converting every hour row to local time (a third of the statement's time).
_LOCAL_MIDNIGHT = "timestamptz '2000-01-01 00:00+08'"
_DAYS_FROM_HOURS = _ROLL_UP.format(
    grain="day", source="hour", bucket=f"time_bucket('1 day', d.bucket, {_LOCAL_MIDNIGHT})"
)
_MONTHS_FROM_DAYS = _ROLL_UP.format(
    grain="month", source="day", bucket="time_bucket('1 month', d.bucket, 'Asia/Shanghai')"
)

# Passes deriving different meters of one firm refresh its rollups one after the other
# (per-firm advisory locks in firm order, held to commit: migration 0013).
_LOCK_FIRMS = """
SELECT lock_firm_rollups(array_agg(m.firm_id))
FROM rollup_buckets b JOIN meters m ON m.id = b.meter_id
"""

_DELETE_FIRM = by_key_probes("""
DELETE FROM firm_rollups f USING rollup_firm_ranges r
WHERE f.granularity = r.granularity AND f.firm_id = r.firm_id AND f.utility = r.utility
  AND f.bucket >= r.b0 AND f.bucket < r.b1
""")

# Firm buckets to refresh: the union, per firm, utility and grain, of its meters' ranges.
# A meter has one rollup per grain and bucket, so a bucket's rows are distinct meters:
# count(*) counts them. The planner takes the meters' rollups for a few rows (the temp
# tables have no statistics) and sorts them by the group keys, locale-aware on `utility`:
# hashing the groups took 183 ms where the sort took 432 (134,000 hour rows of one firm).
_FIRM_RANGES = f"""
CREATE TEMP TABLE IF NOT EXISTS rollup_firm_ranges (
    granularity text, firm_id bigint, utility text, b0 timestamptz, b1 timestamptz
) ON COMMIT DELETE ROWS;
INSERT INTO rollup_firm_ranges
SELECT b.granularity, m.firm_id, m.utility, min(b.b0), max(b.b1)
FROM rollup_buckets b JOIN meters m ON m.id = b.meter_id
GROUP BY b.granularity, m.firm_id, m.utility;
{_DELETE_FIRM}
SET LOCAL enable_sort = off;
INSERT INTO firm_rollups
    (granularity, firm_id, utility, bucket, energy, sharp, peak, flat, valley, estimated, meters)
SELECT r.granularity, r.firm_id, r.utility, mr.bucket,
       sum(mr.energy), sum(mr.sharp), sum(mr.peak), sum(mr.flat), sum(mr.valley),
       sum(mr.estimated), count(*)
FROM rollup_firm_ranges r
JOIN meters m ON m.firm_id = r.firm_id AND m.utility = r.utility
JOIN meter_rollups mr ON mr.granularity = r.granularity AND mr.meter_id = m.id
                     AND mr.bucket >= r.b0 AND mr.bucket < r.b1
GROUP BY r.granularity, r.firm_id, r.utility, mr.bucket;
SET LOCAL enable_sort = DEFAULT;
"""


async def refresh_rollups(conn: asyncpg.Connection, *, hours: HourSums | None = None) -> None:
    """Re-aggregate every bucket touched by the windows in the ``rollup_windows`` table.

    Must run inside the transaction that filled ``rollup_windows`` and replaced intervals.
    ``hours``: the hourly rollups of those windows, already summed from the intervals just
    written (`ingest.hour_rollups`); only when every window starts and ends on whole hours,
    so that the pass wrote every interval of every hour it touches.
    """
    bounds = await conn.fetchrow(f"SELECT min(ws) AS lo, max(we) AS hi FROM {WINDOWS}")
    if bounds is None or bounds["lo"] is None:
        return
    await conn.execute(_BUCKETS)
    await conn.execute(_DELETE_METER)
    # Widen the interval scan to whole months so every touched bucket is complete.
    span = await conn.fetchrow(
        "SELECT min(b0) AS lo, max(b1) AS hi FROM rollup_buckets WHERE granularity = 'day'"
    )
    assert span is not None
    if hours is None:
        await conn.execute(_FROM_INTERVALS, "hour", timedelta(hours=1), span["lo"], span["hi"])
    elif len(hours.meter_id):
        data = memoryview(pgcopy.encode(hours.copy_columns()))  # sent as it is
        await conn.copy_to_table(
            "meter_rollups",
            source=data,  # type: ignore[arg-type]
            columns=list(HOUR_COLUMNS),
            format="binary",
        )
    await conn.execute(_DAYS_FROM_HOURS)
    await conn.execute(_MONTHS_FROM_DAYS)
    await conn.fetchval(_LOCK_FIRMS)
    await conn.execute(_FIRM_RANGES)
    await refresh_town_rollups(conn)
    await refresh_features(conn)

"""Features of each firm's electricity the analytics read, refreshed with the rollups.

Daily (table ``firm_day_features``): the local day's energy, its 24 hourly energies (NaN
for an hour without data: never a NULL element, so the array has one fixed binary layout),
and intervals present against expected (the quarter hours its meters were in service).
Monthly (``firm_month_features``): the month's kWh with the same completeness counts.
Both are rebuilt for the days and months the firm ranges of a derivation pass touch (the
``rollup_firm_ranges`` temp table of `ingest.rollups`), in its transaction.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

_HOURLY = ",\n           ".join(
    f"coalesce(sum(energy) FILTER (WHERE hr = {h}), 'NaN')" for h in range(24)
)

# Quarter hours the firm's electricity meters were in service between {start} and {end}
# (SQL expressions), for the firm in column {firm}.
_EXPECTED = """
(SELECT coalesce(sum(ceil(extract(epoch FROM
            least({end}, coalesce(m.removed_at, {end})) - greatest({start}, m.installed_at))
            / 900)), 0)::int
 FROM meters m WHERE m.firm_id = {firm} AND m.utility = 'electricity'
   AND m.installed_at < {end} AND (m.removed_at IS NULL OR m.removed_at > {start}))
"""

_DAYS = f"""
CREATE TEMP TABLE IF NOT EXISTS rollup_feature_days (
    firm_id bigint, d0 timestamptz, d1 timestamptz
) ON COMMIT DELETE ROWS;
INSERT INTO rollup_feature_days
SELECT firm_id, b0, b1 FROM rollup_firm_ranges
WHERE granularity = 'day' AND utility = 'electricity';
DELETE FROM firm_day_features f USING rollup_feature_days r
WHERE f.firm_id = r.firm_id
  AND f.day >= (r.d0 AT TIME ZONE 'Asia/Shanghai')::date
  AND f.day < (r.d1 AT TIME ZONE 'Asia/Shanghai')::date;
WITH hours AS (
    SELECT h.firm_id, (h.bucket AT TIME ZONE 'Asia/Shanghai')::date AS day,
           extract(hour FROM h.bucket AT TIME ZONE 'Asia/Shanghai')::int AS hr, h.energy
    FROM rollup_feature_days r
    JOIN firm_rollups h ON h.granularity = 'hour' AND h.utility = 'electricity'
                       AND h.firm_id = r.firm_id AND h.bucket >= r.d0 AND h.bucket < r.d1),
hourly AS (
    SELECT firm_id, day, ARRAY[{_HOURLY}] AS hourly FROM hours GROUP BY firm_id, day),
days AS (
    SELECT m.firm_id, (d.bucket AT TIME ZONE 'Asia/Shanghai')::date AS day,
           sum(d.energy) AS energy, sum(d.estimated) AS estimated, sum(d.intervals) AS intervals
    FROM rollup_feature_days r
    JOIN meters m ON m.firm_id = r.firm_id AND m.utility = 'electricity'
    JOIN meter_rollups d ON d.granularity = 'day' AND d.meter_id = m.id
                        AND d.bucket >= r.d0 AND d.bucket < r.d1
    GROUP BY 1, 2)
INSERT INTO firm_day_features (firm_id, day, energy, estimated, intervals, expected, hourly)
SELECT d.firm_id, d.day, d.energy, d.estimated, d.intervals,
       {
    _EXPECTED.format(
        firm="d.firm_id",
        start="(d.day::timestamp AT TIME ZONE 'Asia/Shanghai')",
        end="((d.day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')",
    )
},
       h.hourly
FROM days d JOIN hourly h ON h.firm_id = d.firm_id AND h.day = d.day;
"""

_MONTHS = f"""
CREATE TEMP TABLE IF NOT EXISTS rollup_feature_months (
    firm_id bigint, m0 timestamptz, m1 timestamptz
) ON COMMIT DELETE ROWS;
INSERT INTO rollup_feature_months
SELECT firm_id, b0, b1 FROM rollup_firm_ranges
WHERE granularity = 'month' AND utility = 'electricity';
DELETE FROM firm_month_features f USING rollup_feature_months r
WHERE f.firm_id = r.firm_id
  AND f.month >= (r.m0 AT TIME ZONE 'Asia/Shanghai')::date
  AND f.month < (r.m1 AT TIME ZONE 'Asia/Shanghai')::date;
WITH months AS (
    SELECT m.firm_id, d.bucket, sum(d.energy) AS kwh, sum(d.estimated) AS estimated,
           sum(d.intervals) AS intervals
    FROM rollup_feature_months r
    JOIN meters m ON m.firm_id = r.firm_id AND m.utility = 'electricity'
    JOIN meter_rollups d ON d.granularity = 'month' AND d.meter_id = m.id
                        AND d.bucket >= r.m0 AND d.bucket < r.m1
    GROUP BY 1, 2)
INSERT INTO firm_month_features (firm_id, month, kwh, estimated, intervals, expected)
SELECT firm_id, (bucket AT TIME ZONE 'Asia/Shanghai')::date, kwh, estimated, intervals,
       {
    _EXPECTED.format(
        firm="months.firm_id",
        start="months.bucket",
        end="(((months.bucket AT TIME ZONE 'Asia/Shanghai') + interval '1 month')"
        " AT TIME ZONE 'Asia/Shanghai')",
    )
}
FROM months;
"""


async def refresh_features(conn: asyncpg.Connection) -> None:
    """Rebuild the day and month features of the firm ranges of this derivation pass."""
    await conn.execute(_DAYS)
    await conn.execute(_MONTHS)


_RANGES = """
CREATE TEMP TABLE IF NOT EXISTS rollup_firm_ranges (
    granularity text, firm_id bigint, utility text, b0 timestamptz, b1 timestamptz
) ON COMMIT DELETE ROWS
"""


async def refresh_features_for(
    conn: asyncpg.Connection, ranges: list[tuple[str, int, str, datetime, datetime]]
) -> None:
    """Rebuild the features of ``ranges`` (granularity, firm, utility, start, end) after
    rollups were written by other means than a derivation pass (e.g. a history import).
    Call inside a transaction."""
    await conn.execute(_RANGES)
    await conn.copy_records_to_table("rollup_firm_ranges", records=ranges)
    await refresh_features(conn)

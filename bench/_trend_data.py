"""A trend-query workload: firms x days of 15-minute intervals and their rollups, in SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

TOWNS = (
    "稠城",
    "北苑",
    "稠江",
    "江东",
    "后宅",
    "城西",
    "廿三里",
    "福田",
    "佛堂",
    "赤岸",
    "义亭",
    "上溪",
    "大陈",
    "苏溪",
)
INDUSTRIES = ("C1711", "C1762", "C2438", "C2682", "C1713", "C3360", "C3825", "C3670")

# Valid GB 32100 codes: the body, then its mod-31 check character, computed in SQL.
_FIRMS = """
INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale)
SELECT b.body || substr(a.alphabet, (31 - (
         SELECT sum((strpos(a.alphabet, substr(b.body, i, 1)) - 1)
                    * (ARRAY[1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28])[i])
         FROM generate_series(1, 17) i)::int % 31) % 31 + 1, 1),
       '企业' || g, ($2::text[])[1 + g % 8], ($3::text[])[1 + g % 14], 5 + g % 40, true
FROM generate_series(1, $1) g,
     LATERAL (SELECT '9133' || lpad(g::text, 13, '0') AS body) b,
     LATERAL (SELECT '0123456789ABCDEFGHJKLMNPQRTUWXY'::text AS alphabet) a
"""
_METERS = """
INSERT INTO meters (firm_id, code, utility, protocol, address, installed_at)
SELECT id, 'Q' || id, 'electricity', 'grid-feed', '{"feed": "bench"}', '2024-01-01' FROM firms
"""
_INTERVALS = """
INSERT INTO intervals (meter_id, start, energy, estimated, complete)
SELECT m.id, t, 5 + (m.id % 17) + 4 * sin(extract(epoch FROM t) / 13750.0), false, true
FROM meters m, generate_series($1::timestamptz, $2::timestamptz - interval '15 minutes',
                               interval '15 minutes') t
WHERE m.id % $3 = $4
"""
_METER_ROLLUPS = """
INSERT INTO meter_rollups (granularity, meter_id, bucket, energy, estimated, intervals)
SELECT $1, meter_id, time_bucket($2::interval, start, 'Asia/Shanghai'), sum(energy), 0, count(*)
FROM intervals GROUP BY 2, 3
"""
_FIRM_ROLLUPS = """
INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, estimated, meters)
SELECT r.granularity, m.firm_id, m.utility, r.bucket, sum(r.energy), 0, count(*)
FROM meter_rollups r JOIN meters m ON m.id = r.meter_id GROUP BY 1, 2, 3, 4
"""


async def build(conn: asyncpg.Connection, *, firms: int, start: str, end: str) -> int:
    """Create ``firms`` firms with one meter each and intervals in [start, end); returns
    the number of interval rows."""
    await conn.execute(_FIRMS, firms, list(INDUSTRIES), list(TOWNS))
    await conn.execute(_METERS)
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    for part in range(8):  # in slices, to keep each statement's memory bounded
        await conn.execute(_INTERVALS, lo, hi, 8, part)
    await conn.execute("SET timezone = 'Asia/Shanghai'")
    for granularity in ("hour", "day", "month"):
        await conn.execute(
            _METER_ROLLUPS.replace("$2::interval", f"'1 {granularity}'"), granularity
        )
    await conn.execute(_FIRM_ROLLUPS)
    await conn.execute("ANALYZE")
    return int(await conn.fetchval("SELECT count(*) FROM intervals"))

"""A trend-query workload: the rollups of firms x days of 15-minute intervals, in SQL.

Each firm has one meter; its interval energy at ``t`` is ``5 + id % 17 + 4 sin(t / 13750 s)``
(kWh). The rollups the interval worker keeps are written straight from that formula: firm
hours (the four quarter-hours summed), days from hours, months from days; the town rollups
by the database's own `refresh_town_rollups`, as the worker's pass calls it. The intervals
themselves (70 million rows for 2,000 firms x a year) are not written: no measured query
reads them. One firm in 50 moved town halfway (`firm_towns` has two periods), so a
breakdown by town attributes by period as it must in a real city.
"""

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
#: The sum of the formula over the four quarter-hours of the hour starting at ``h``.
_HOURS = """
INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, estimated, meters)
SELECT 'hour', f.id, 'electricity', h,
       4 * (5 + f.id % 17) + 4 * (sin(e / 13750.0) + sin((e + 900) / 13750.0)
                                  + sin((e + 1800) / 13750.0) + sin((e + 2700) / 13750.0)),
       0, 1
FROM firms f,
     generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', interval '1 hour') h,
     LATERAL (SELECT extract(epoch FROM h) AS e) x
WHERE f.id % $3 = $4
"""
_ROLL_UP = """
INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, estimated, meters)
SELECT '{grain}', firm_id, utility, time_bucket('1 {grain}', bucket, 'Asia/Shanghai'),
       sum(energy), 0, 1
FROM firm_rollups WHERE granularity = '{source}' GROUP BY firm_id, utility, 4
"""


async def _move_firms(conn: asyncpg.Connection, at: datetime) -> None:
    """One firm in 50 moves town at ``at``: its periods are rewritten by hand, since a move
    through `firms` starts today."""
    await conn.execute("CREATE TEMP TABLE bench_moves (id bigint, old_town text, new_town text)")
    await conn.execute(
        "INSERT INTO bench_moves SELECT id, town, ($1::text[])[1 + (id + 5) % 14] FROM firms "
        "WHERE id % 50 = 0 AND town <> ($1::text[])[1 + (id + 5) % 14]",
        list(TOWNS),
    )
    await conn.execute("UPDATE firms f SET town = m.new_town FROM bench_moves m WHERE f.id = m.id")
    await conn.execute("DELETE FROM firm_towns USING bench_moves WHERE firm_id = id")
    await conn.execute(
        "INSERT INTO firm_towns (firm_id, valid_from, valid_to, town) "
        "SELECT id, '-infinity'::timestamptz, $1::timestamptz, old_town FROM bench_moves "
        "UNION ALL SELECT id, $1, 'infinity', new_town FROM bench_moves",
        at,
    )


_TOWN_ROLLUPS = """
SELECT refresh_town_rollups(array_agg(g), array_agg(t), array_agg('electricity'::text),
                            array_agg('-infinity'::timestamptz), array_agg('infinity'::timestamptz))
FROM unnest(ARRAY['day', 'month']) g, unnest($1::text[]) t
"""


async def build(conn: asyncpg.Connection, *, firms: int, start: str, end: str) -> int:
    """Create ``firms`` firms with one meter each and the rollups of their intervals in
    [start, end); returns the number of intervals those rollups sum."""
    await conn.execute(_FIRMS, firms, list(INDUSTRIES), list(TOWNS))
    await conn.execute(_METERS)
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    await _move_firms(conn, lo + (hi - lo) / 2)
    await conn.execute("SET timezone = 'Asia/Shanghai'")
    for part in range(8):  # in slices, to keep each statement's memory bounded
        await conn.execute(_HOURS, lo, hi, 8, part)
    await conn.execute(_ROLL_UP.format(grain="day", source="hour"))
    await conn.execute(_ROLL_UP.format(grain="month", source="day"))
    await conn.execute(_TOWN_ROLLUPS, list(TOWNS))
    # As a database that has lived with its data: vacuumed (visibility map set, so no
    # autovacuum of freshly loaded tables runs during the measurements), analysed, and its
    # pages written out (else the checkpoint that the build's gigabytes of WAL set off
    # writes them back during the measurements: seen, a 30 s checkpoint under every query).
    await conn.execute("VACUUM (ANALYZE) firm_rollups, town_rollups, firms, firm_towns")
    await conn.execute("ANALYZE")
    await conn.execute("CHECKPOINT")
    hours = await conn.fetchval("SELECT count(*) FROM firm_rollups WHERE granularity = 'hour'")
    return 4 * int(hours)

"""Shared test helpers: fresh firms and meters in the session database."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import asyncpg

from meterhub.reading import LOCAL_TZ
from meterhub.uscc import check_character

INSTALLED = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
_firm_numbers = itertools.count(1)


def credit_code(n: int) -> str:
    body = f"91330782MA{n:07d}"
    return body + check_character(body)


async def create_meters(
    conn: asyncpg.Connection,
    count: int,
    *,
    utility: str = "electricity",
    ct: float = 1,
    pt: float = 1,
    max_power: float = 500,
    town: str = "苏溪",
    industry: str = "C1711",
) -> list[int]:
    """A new firm with ``count`` new meters; returns the meter ids."""
    firm = await conn.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, $3, $4, 12.5, true) RETURNING id",
        credit_code((next(_firm_numbers) * 7_919 + uuid.uuid4().int) % 10_000_000),
        f"测试企业 {uuid.uuid4().hex[:6]}",
        industry,
        town,
    )
    ids = await conn.fetch(
        "INSERT INTO meters (firm_id, code, utility, protocol, ct_ratio, pt_ratio, max_power, "
        "installed_at) SELECT $1, $2 || '-' || g, $3, 'grid-feed', $4, $5, $6, $7 "
        "FROM generate_series(1, $8) AS g RETURNING id",
        firm,
        uuid.uuid4().hex[:10],
        utility,
        ct,
        pt,
        max_power,
        INSTALLED,
        count,
    )
    return [row["id"] for row in ids]

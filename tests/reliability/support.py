"""Helpers of the fault suite: plain connections and grid-feed meters in any database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from tests.support import create_meters

FEED = "sgcc-yiwu"


@asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def grid_codes(conn: asyncpg.Connection, count: int, feed: str = FEED) -> list[str]:
    """``count`` new grid-feed meters of ``feed``; their codes."""
    ids = await create_meters(conn, count)
    codes = [f"{feed}-{uuid.uuid4().hex[:8]}" for _ in ids]
    for meter_id, code in zip(ids, codes, strict=True):
        await conn.execute(
            "UPDATE meters SET code = $2, address = jsonb_build_object('feed', $3::text) "
            "WHERE id = $1",
            meter_id,
            code,
            feed,
        )
    return codes

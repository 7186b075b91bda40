"""Seeding helpers for the trend tests (no tests here): firms, meters, intervals, rollups.

Intervals are written directly and the rollups refreshed by the interval worker's own
`refresh_rollups`, so every figure a test expects is a hand sum of the intervals it wrote.
Each test makes its own firms (in unique towns where it sums towns) and uses dates no other
test uses where it sums the city.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from ingest.interval_worker import prepare_connection
from ingest.rollups import CREATE_WINDOWS, WINDOWS, refresh_rollups
from meterhub.reading import LOCAL_TZ
from meterhub.uscc import check_character
from tests.support import ensure_town

Q = timedelta(minutes=15)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Asia/Shanghai wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


def unique_town() -> str:
    return f"测试镇{uuid.uuid4().hex[:6]}"


async def new_firm(
    db: asyncpg.Connection,
    *,
    town: str,
    industry: str = "C1711",
    land_mu: float | None = 12.5,
    name: str | None = None,
) -> int:
    await ensure_town(db, town)  # unique test towns join the towns table
    body = f"91330782MA{uuid.uuid4().int % 10_000_000:07d}"
    firm: int = await db.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, $3, $4, $5, true) RETURNING id",
        body + check_character(body),
        name or f"趋势测试企业{uuid.uuid4().hex[:6]}",
        industry,
        town,
        land_mu,
    )
    return firm


async def new_meter(
    db: asyncpg.Connection,
    firm: int,
    *,
    utility: str = "electricity",
    installed: datetime | None = None,
) -> int:
    meter: int = await db.fetchval(
        "INSERT INTO meters (firm_id, code, utility, protocol, installed_at) "
        "VALUES ($1, $2, $3, 'grid-feed', $4) RETURNING id",
        firm,
        f"trend-{uuid.uuid4().hex[:12]}",
        utility,
        installed or at(2020, 1, 1),
    )
    return meter


async def seed(
    db: asyncpg.Connection,
    meter: int,
    rows: Iterable[tuple[datetime, float] | tuple[datetime, float, bool]],
) -> None:
    """Write 15-minute intervals ``(start, energy[, estimated])`` and refresh the rollups."""
    records = [(meter, r[0], float(r[1]), bool(r[2]) if len(r) > 2 else False) for r in rows]
    await prepare_connection(db)
    async with db.transaction():
        await db.copy_records_to_table(
            "intervals", records=records, columns=("meter_id", "start", "energy", "estimated")
        )
        await db.execute(CREATE_WINDOWS)
        starts = [r[1] for r in records]
        await db.copy_records_to_table(WINDOWS, records=[(meter, min(starts), max(starts) + Q)])
        await refresh_rollups(db)


def quarters(start: datetime, count: int, energy: float) -> list[tuple[datetime, float]]:
    """``count`` consecutive intervals from ``start``, each of ``energy``."""
    return [(start + i * Q, energy) for i in range(count)]

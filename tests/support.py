"""Shared test helpers: fresh firms and meters in the session database, the API in-process
and an MQTT ingest worker."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
import httpx

from api.app import create_app
from collectors.mqtt.worker import MqttIngestWorker
from ingest.interval_worker import derive_pending, prepare_connection
from ingest.registry import MeterRegistry
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
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


async def ensure_town(conn: asyncpg.Connection, name: str) -> None:
    """Register ``name`` as a town (for tests that need towns of their own), unless it is one."""
    await conn.execute(
        "INSERT INTO towns (name, full_name, kind, notice_unit, sort_order) "
        "SELECT $1, $1 || '镇', 'town', $1 || '镇人民政府', "
        "(SELECT coalesce(max(sort_order), 0) + 1 FROM towns) ON CONFLICT DO NOTHING",
        name,
    )


@asynccontextmanager
async def in_process_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with its lifespan running, over httpx."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://meterhub.test"
        ) as http,
    ):
        yield http


@asynccontextmanager
async def mqtt_ingest(settings: Settings, gateway_id: str) -> AsyncIterator[None]:
    """An ingest sink fed by an MQTT worker on ``gateway_id`` in a share group of its own;
    the worker's broker session ends with it."""
    group = f"t{uuid.uuid4().hex[:10]}"
    async with (
        IngestSink(settings) as sink,
        MqttIngestWorker(
            settings,
            sink,
            group=group,
            gateways=gateway_id,
            client_id=group,
            session_expiry=300,
            end_session=True,
            drain_timeout=10.0,
        ),
    ):
        yield


async def derive_all(db: asyncpg.Connection) -> None:
    """Derive on ``db`` until nothing is pending. A pass that takes nothing while marks
    remain means another worker (an in-process API's) holds them: wait for it, do not take
    the empty pass for done."""
    await prepare_connection(db)
    registry = MeterRegistry()
    while True:
        if (await derive_pending(db, registry)).marks:
            continue
        if not await db.fetchval("SELECT count(*) FROM interval_dirty"):
            return
        await asyncio.sleep(0.05)  # polling the database: no event to wait on

"""Fixtures for MQTT tests: gateway users on the local broker, MQTT meters, workers."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

import asyncpg
import pytest

from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ
from meterhub.settings import PROJECT_ROOT, Settings
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.ingest.conftest import credit_code

INSTALLED = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
#: Meter time of the first simulated reading.
T0 = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)
SERVICES = PROJECT_ROOT / "deploy" / "services.sh"
_created_users: set[str] = set()


def ensure_gateway_user(gateway_id: str) -> str:
    """Create (once per session) the broker user of ``gateway_id``; returns its password."""
    password = f"pw-{gateway_id}"
    if gateway_id not in _created_users:
        subprocess.run(
            ["bash", str(SERVICES), "mqtt-user", gateway_id, password],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _created_users.add(gateway_id)
    return password


@pytest.fixture
def gateway_id(request: pytest.FixtureRequest) -> str:
    """A gateway of this test alone (stable per test, so the broker's user list stays short)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return f"mht-{digest}"


@pytest.fixture
def broker_url(base_settings: Settings) -> str:
    """The local broker without credentials (gateways log in as themselves)."""
    address = BrokerAddress.from_url(base_settings.mqtt())
    return f"mqtt://{address.host}:{address.port}"


@pytest.fixture
def group() -> str:
    """A share group of this test alone."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mqtt_settings(sink_settings: Settings) -> Settings:
    """The settings of the ``sink`` fixture (tests/conftest.py), which workers share."""
    return sink_settings


async def create_mqtt_meters(
    conn: asyncpg.Connection,
    gateway_id: str,
    channels: Iterable[int],
    *,
    installed_at: datetime = INSTALLED,
) -> dict[int, int]:
    """A new firm with one MQTT meter per channel of ``gateway_id``; channel -> meter id."""
    firm = await conn.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, above_scale) "
        "VALUES ($1, $2, 'C1711', '苏溪', true) RETURNING id",
        credit_code(uuid.uuid4().int % 10_000_000),
        f"网关测试企业 {uuid.uuid4().hex[:6]}",
    )
    rows = await conn.fetch(
        "INSERT INTO meters (firm_id, code, utility, protocol, address, max_power, installed_at) "
        "SELECT $1, $2 || '-' || c, 'electricity', 'mqtt', "
        "       jsonb_build_object('gateway_id', $3::text, 'channel', c), 500, $4 "
        "FROM unnest($5::int[]) AS c RETURNING id, (address->>'channel')::int AS channel",
        firm,
        uuid.uuid4().hex[:10],
        gateway_id,
        installed_at,
        list(channels),
    )
    return {row["channel"]: row["id"] for row in rows}


WorkerFactory = Callable[..., AbstractAsyncContextManager[MqttIngestWorker]]


@pytest.fixture
def worker_factory(mqtt_settings: Settings, group: str, gateway_id: str) -> WorkerFactory:
    """``async with worker_factory(sink, name) as worker``: a worker of this test's group
    on this test's gateway (``settings``: other than the sink's); its broker session ends
    with it unless ``end_session=False``."""

    @asynccontextmanager
    async def make(
        sink: IngestSink, name: str = "w1", settings: Settings | None = None, **options: object
    ) -> AsyncIterator[MqttIngestWorker]:
        kwargs: dict[str, object] = {
            "group": group,
            "gateways": gateway_id,
            "client_id": f"{group}-{name}",
            "session_expiry": 300,
            "end_session": True,
            "drain_timeout": 10.0,
            "connect_timeout": 20.0,
        }
        kwargs.update(options)
        async with MqttIngestWorker(settings or mqtt_settings, sink, **kwargs) as worker:  # type: ignore[arg-type]
            yield worker

    return make


@pytest.fixture
async def gateway(broker_url: str, gateway_id: str) -> AsyncIterator[MqttGatewaySimulator]:
    """A connected simulated gateway with channels 1..8."""
    password = ensure_gateway_user(gateway_id)
    async with MqttGatewaySimulator(broker_url, gateway_id, password) as simulator:
        yield simulator


async def stored(conn: asyncpg.Connection, meter_ids: Iterable[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT meter_id, ts, energy, power, source FROM readings "
        "WHERE meter_id = ANY($1::bigint[]) ORDER BY meter_id, ts",
        list(meter_ids),
    )

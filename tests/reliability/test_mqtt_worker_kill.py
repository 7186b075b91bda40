"""`meterhub ingest-mqtt` SIGKILLed mid-stream and started again with the same client id: the
broker (a private Mosquitto) keeps its session and queues what arrives meanwhile; what was
committed but not yet acknowledged comes back and is stored once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import create_mqtt_meters
from tests.reliability.accounting import assert_exact
from tests.reliability.broker import PrivateBroker
from tests.reliability.mqtt_process import MqttWorkerProcess
from tests.reliability.mqtt_stream import CHANNELS, STEP, mqtt_ledger, paced_stream

pytestmark = pytest.mark.integration


async def run_kills(
    db: asyncpg.Connection,
    settings: Settings,
    broker: PrivateBroker,
    tmp_path: Path,
    *,
    messages: int,
    rate: float,
    kills: int,
) -> None:
    gateway_id = f"rel-{uuid.uuid4().hex[:8]}"
    password = broker.add_user(gateway_id, f"pw-{gateway_id}")
    meters = await create_mqtt_meters(db, gateway_id, CHANNELS)
    worker = MqttWorkerProcess(
        broker_url=broker.ingest_url,
        dsn=settings.dsn(),
        spool=tmp_path / "worker-spool",
        log=tmp_path / "worker.log",
        gateway_id=gateway_id,
    )
    await asyncio.to_thread(worker.start)
    gateway = MqttGatewaySimulator(
        broker.url, gateway_id, password, channels=CHANNELS, interval=STEP, timeout=60
    )
    stored_at_kill: list[int] = []
    try:
        async with gateway:
            stream = asyncio.create_task(paced_stream(gateway, messages=messages, rate=rate))
            for k in range(kills):
                while gateway.stats.delivered < (k + 1) / (kills + 1) * messages:
                    await asyncio.sleep(0.02)
                stored_at_kill.append(
                    await db.fetchval(
                        "SELECT count(*) FROM readings WHERE meter_id = ANY($1::bigint[])",
                        list(meters.values()),
                    )
                )
                await asyncio.to_thread(worker.kill)
                await asyncio.sleep(0.5)  # the broker queues for the absent session
                await asyncio.to_thread(worker.start)
            delivered = await stream
        name = f"ingest-mqtt SIGKILLed x{kills} [mqtt]"
        tally = await mqtt_ledger(name, meters, delivered).settle(db, wait=60)
    finally:
        await asyncio.to_thread(worker.stop)
    print(f"stored when killed: {stored_at_kill}; gateway {gateway.stats}")
    assert_exact(tally)
    assert all(0 < s < tally.sent for s in stored_at_kill), "killed mid-stream"
    assert worker.starts == kills + 1


async def test_the_mqtt_worker_killed_mid_stream_loses_and_doubles_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker, tmp_path: Path
) -> None:
    await run_kills(
        db, broker_settings, private_broker, tmp_path, messages=1_500, rate=150, kills=1
    )


@pytest.mark.slow
async def test_the_mqtt_worker_killed_again_and_again_loses_and_doubles_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker, tmp_path: Path
) -> None:
    await run_kills(
        db, broker_settings, private_broker, tmp_path, messages=20_000, rate=200, kills=5
    )

"""Mosquitto restarted mid-stream, gracefully and by SIGKILL: nothing the broker acknowledged
as delivered is lost and nothing is stored twice.

A broker of the test's own (persistence on, the project's configuration, users and ACL),
the real ingest worker and sink writing into this session's database, and the simulated
gateway publishing a paced stream of QoS 1 messages. The gateway counts a message as
delivered only on PUBACK 0 and publishes it again after a 16 (no matching subscribers),
which is what Mosquitto 2.0 answers while a shared subscription has not been renewed.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from dataclasses import asdict, dataclass

import asyncpg
import orjson
import pytest

from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import create_mqtt_meters
from tests.reliability.accounting import Tally, assert_exact
from tests.reliability.broker import PrivateBroker
from tests.reliability.mqtt_stream import CHANNELS, STEP, mqtt_ledger, paced_stream

pytestmark = pytest.mark.integration


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart the broker with ``sig`` once ``at`` of the messages are delivered."""

    sig: signal.Signals
    at: float
    down_for: float = 0.3


async def restart_when_due(
    broker: PrivateBroker, gateway: MqttGatewaySimulator, plan: list[Restart], messages: int
) -> None:
    for step in plan:
        while gateway.stats.delivered < step.at * messages:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(broker.restart, step.sig, down_for=step.down_for)


async def run_restarts(
    db: asyncpg.Connection,
    settings: Settings,
    broker: PrivateBroker,
    *,
    name: str,
    messages: int,
    rate: float,
    plan: list[Restart],
) -> tuple[Tally, MqttIngestWorker, MqttGatewaySimulator]:
    gateway_id = f"rel-{uuid.uuid4().hex[:8]}"
    password = broker.add_user(gateway_id, f"pw-{gateway_id}")
    meters = await create_mqtt_meters(db, gateway_id, CHANNELS)
    gateway = MqttGatewaySimulator(
        broker.url, gateway_id, password, channels=CHANNELS, interval=STEP, timeout=60
    )
    async with (
        IngestSink(settings) as sink,
        MqttIngestWorker(
            settings,
            sink,
            gateways=gateway_id,
            client_id=f"ingest-{gateway_id}",
            session_expiry=600,
            drain_timeout=10.0,
        ) as worker,
        gateway,
    ):
        restarts = asyncio.create_task(restart_when_due(broker, gateway, plan, messages))
        delivered = await paced_stream(gateway, messages=messages, rate=rate)
        await restarts
        ledger = mqtt_ledger(name, meters, delivered)
        tally = await ledger.settle(db)  # waits for the worker (still running) to store all
    print(orjson.dumps({"worker": asdict(worker.stats), "gateway": asdict(gateway.stats)}).decode())
    return tally, worker, gateway


def assert_nothing_lost(tally: Tally, worker: MqttIngestWorker, restarts: int) -> None:
    assert_exact(tally)  # every message ends delivered (the gateway retries) and stored
    assert worker.connections == 1 + restarts
    assert worker.subscriptions == worker.connections  # subscribed again on each connection
    assert worker.stats.conflicts == 0 and worker.stats.quarantined == 0


async def test_broker_restarts_mid_stream_lose_and_double_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker
) -> None:
    plan = [Restart(signal.SIGTERM, 0.25), Restart(signal.SIGKILL, 0.6)]
    tally, worker, _ = await run_restarts(
        db,
        broker_settings,
        private_broker,
        name="mosquitto SIGTERM + SIGKILL [mqtt]",
        messages=2_000,
        rate=120,
        plan=plan,
    )
    assert_nothing_lost(tally, worker, len(plan))


async def test_a_gateway_keeps_what_no_subscriber_took_until_the_worker_is_back(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker
) -> None:
    """After a restart the broker has the worker's session but not its shared subscription:
    it answers 16 and drops the message. The gateway keeps it and publishes it again; once
    the worker is back (it subscribes again although its session was resumed) it lands."""
    gateway_id = f"rel-{uuid.uuid4().hex[:8]}"
    password = private_broker.add_user(gateway_id, f"pw-{gateway_id}")
    meters = await create_mqtt_meters(db, gateway_id, CHANNELS)
    options: dict[str, object] = {
        "gateways": gateway_id,
        "client_id": f"ingest-{gateway_id}",
        "session_expiry": 600,
    }
    messages = 20
    async with IngestSink(broker_settings) as sink:
        async with MqttIngestWorker(broker_settings, sink, **options):  # type: ignore[arg-type]
            pass  # leaves its session (with the shared subscription) behind
        await asyncio.to_thread(private_broker.restart, signal.SIGTERM)
        gateway = MqttGatewaySimulator(
            private_broker.url, gateway_id, password, channels=CHANNELS, interval=STEP
        )
        async with gateway:
            stream = asyncio.create_task(paced_stream(gateway, messages=messages, rate=100))
            async with asyncio.timeout(20):
                while gateway.stats.not_delivered < messages:
                    await asyncio.sleep(0.05)
            assert gateway.stats.delivered == 0
            async with MqttIngestWorker(broker_settings, sink, **options) as worker:  # type: ignore[arg-type]
                delivered = await stream
                await worker.wait_until(lambda s: s.acked >= messages, timeout=30)
            assert worker.subscriptions == 1
    tally = await mqtt_ledger("mosquitto restarted, worker away [mqtt]", meters, delivered).settle(
        db
    )
    assert_exact(tally)
    assert all(delivered)
    assert gateway.stats.delivered == gateway.stats.published == messages


@pytest.mark.slow
async def test_many_broker_restarts_under_load_lose_and_double_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker
) -> None:
    sigs = [signal.SIGTERM, signal.SIGKILL] * 5
    plan = [Restart(sig, (k + 1) / 12, down_for=1.0 + k % 3) for k, sig in enumerate(sigs)]
    tally, worker, _ = await run_restarts(
        db,
        broker_settings,
        private_broker,
        name="mosquitto restarted x10 [mqtt]",
        messages=24_000,
        rate=200,
        plan=plan,
    )
    assert_nothing_lost(tally, worker, len(plan))

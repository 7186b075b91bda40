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
import contextlib
import signal
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from collectors.errors import TransportError
from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator, linear_energy
from tests.collectors.mqtt.conftest import T0, create_mqtt_meters
from tests.reliability.broker import PrivateBroker

pytestmark = pytest.mark.integration

CHANNELS = tuple(range(1, 9))
STEP = timedelta(minutes=1)

Key = tuple[int, datetime]


@dataclass(slots=True)
class Tally:
    """Readings sent, acknowledged by the broker as delivered, stored; lost = acknowledged
    and not stored; duplicated = stored more than once or as a conflicting second version."""

    sent: int
    acked: int
    stored: int
    lost: int
    duplicated: int


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart the broker with ``sig`` once ``at`` of the messages are delivered."""

    sig: signal.Signals
    at: float
    down_for: float = 0.3


async def _publish(gateway: MqttGatewaySimulator, n: int) -> bool:
    try:
        await gateway.publish_elements(gateway.elements(T0 + n * STEP))
    except (TransportError, TimeoutError):
        return False
    return True


async def paced_stream(gateway: MqttGatewaySimulator, *, messages: int, rate: float) -> list[bool]:
    """Publish message 0 .. messages-1 (all channels at T0 + n minutes) at about ``rate``
    messages per second; for each, whether the broker acknowledged it as delivered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks: list[asyncio.Task[bool]] = []
    for n in range(messages):
        tasks.append(asyncio.create_task(_publish(gateway, n)))
        if (ahead := started + (n + 1) / rate - loop.time()) > 0:
            await asyncio.sleep(ahead)
    return await asyncio.gather(*tasks)


async def restart_when_due(
    broker: PrivateBroker, gateway: MqttGatewaySimulator, plan: list[Restart], messages: int
) -> None:
    for step in plan:
        while gateway.stats.delivered < step.at * messages:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(broker.restart, step.sig, down_for=step.down_for)


async def stored_keys(db: asyncpg.Connection, meters: dict[int, int]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT meter_id, ts, energy FROM readings WHERE meter_id = ANY($1::bigint[])",
        list(meters.values()),
    )


async def run_restarts(
    db: asyncpg.Connection,
    settings: Settings,
    broker: PrivateBroker,
    *,
    messages: int,
    rate: float,
    plan: list[Restart],
) -> tuple[Tally, MqttIngestWorker, MqttGatewaySimulator]:
    gateway_id = f"rel-{uuid.uuid4().hex[:8]}"
    password = broker.add_user(gateway_id, f"pw-{gateway_id}")
    meters = await create_mqtt_meters(db, gateway_id, CHANNELS)
    by_meter = {meter: channel for channel, meter in meters.items()}
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
        acked: set[Key] = {
            (meters[channel], T0 + n * STEP)
            for n, ok in enumerate(delivered)
            if ok
            for channel in CHANNELS
        }
        with contextlib.suppress(TimeoutError):  # then the tally shows what is missing
            async with asyncio.timeout(30):
                while not acked <= {
                    (r["meter_id"], r["ts"]) for r in await stored_keys(db, meters)
                }:
                    await asyncio.sleep(0.2)
    rows = await stored_keys(db, meters)
    keys = {(r["meter_id"], r["ts"]) for r in rows}
    conflicts = await db.fetchval(
        "SELECT count(*) FROM reading_conflicts WHERE meter_id = ANY($1::bigint[])",
        list(meters.values()),
    )
    assert all(
        r["energy"] == linear_energy(by_meter[r["meter_id"]], r["ts"])["energy"] for r in rows
    )
    tally = Tally(
        sent=messages * len(CHANNELS),
        acked=len(acked),
        stored=len(rows),
        lost=len(acked - keys),
        duplicated=len(rows) - len(keys) + conflicts,
    )
    print(
        orjson.dumps(
            {
                "tally": asdict(tally),
                "worker": asdict(worker.stats),
                "gateway": asdict(gateway.stats),
            }
        ).decode()
    )
    return tally, worker, gateway


def assert_nothing_lost(tally: Tally, worker: MqttIngestWorker, restarts: int) -> None:
    assert tally.lost == 0 and tally.duplicated == 0
    assert tally.acked == tally.sent, "every message ends delivered: the gateway retries"
    assert tally.stored == tally.acked  # nothing stored that was not acknowledged either
    assert worker.connections == 1 + restarts
    assert worker.subscriptions == worker.connections  # subscribed again on each connection
    assert worker.stats.conflicts == 0 and worker.stats.quarantined == 0


async def test_broker_restarts_mid_stream_lose_and_double_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker
) -> None:
    plan = [Restart(signal.SIGTERM, 0.25), Restart(signal.SIGKILL, 0.6)]
    tally, worker, _ = await run_restarts(
        db, broker_settings, private_broker, messages=2_000, rate=120, plan=plan
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
    rows = await stored_keys(db, meters)
    assert all(delivered)
    assert gateway.stats.delivered == gateway.stats.published == messages
    assert len(rows) == messages * len(CHANNELS)
    assert {(r["meter_id"], r["ts"]) for r in rows} == {
        (meters[c], T0 + n * STEP) for n in range(messages) for c in CHANNELS
    }


@pytest.mark.slow
async def test_many_broker_restarts_under_load_lose_and_double_nothing(
    db: asyncpg.Connection, broker_settings: Settings, private_broker: PrivateBroker
) -> None:
    sigs = [signal.SIGTERM, signal.SIGKILL] * 5
    plan = [Restart(sig, (k + 1) / 12, down_for=1.0 + k % 3) for k, sig in enumerate(sigs)]
    tally, worker, _ = await run_restarts(
        db, broker_settings, private_broker, messages=24_000, rate=200, plan=plan
    )
    assert_nothing_lost(tally, worker, len(plan))

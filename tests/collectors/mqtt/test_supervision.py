"""The MQTT consumer runs supervised: a crash in it is not restartable (the ack window would
wait for slots nobody settles), so it is reported as fatal (the process exits, the broker
redelivers) instead of leaving a worker that silently takes no more messages."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from collectors.mqtt.acks import Delivery, Slot
from ingest.sink import IngestSink
from meterhub.supervise import TASKS_DOWN, Supervisor
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import T0, WorkerFactory, create_mqtt_meters

pytestmark = pytest.mark.integration


async def test_a_crashed_consumer_is_fatal_and_acknowledges_nothing(
    db: asyncpg.Connection,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    await create_mqtt_meters(db, gateway_id, gateway.channels)
    fatal: list[tuple[str, BaseException]] = []
    supervisor = Supervisor(on_fatal=lambda name, exc: fatal.append((name, exc)))
    async with worker_factory(sink, supervisor=supervisor) as worker:

        def broken(delivery: Delivery) -> Slot:
            raise RuntimeError("a bug in the ack window")

        worker._window.open = broken  # type: ignore[method-assign]
        publish = asyncio.create_task(gateway.publish_elements(gateway.elements(T0)))
        async with asyncio.timeout(20):
            while not fatal:
                await asyncio.sleep(0.05)
        assert worker.stats.acked == 0
        publish.cancel()
        await asyncio.gather(publish, return_exceptions=True)
    ((name, exc),) = fatal
    assert name.startswith("mqtt-consumer-") and isinstance(exc, RuntimeError)
    assert [s.name for s in supervisor.states() if s.dead] == [name]
    TASKS_DOWN.dec()  # this test's dead consumer: leave the process gauge as it was

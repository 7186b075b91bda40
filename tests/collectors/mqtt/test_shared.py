"""Two workers of one share group split the messages: each goes to exactly one of them."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import pytest

from collectors.mqtt.worker import MqttIngestWorker, WorkerStats
from ingest.sink import IngestSink
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import T0, WorkerFactory, create_mqtt_meters, stored

pytestmark = pytest.mark.integration


async def wait_total(workers: list[MqttIngestWorker], acked: int, *, timeout: float) -> None:
    """Wait until the workers have acknowledged ``acked`` messages between them."""

    def reached(_: WorkerStats) -> bool:
        return sum(w.stats.acked for w in workers) >= acked

    waits = [asyncio.create_task(w.wait_until(reached, timeout=timeout)) for w in workers]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def test_each_message_goes_to_exactly_one_worker(
    db: asyncpg.Connection,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    messages, steps = 200, 2
    async with worker_factory(sink, "a") as first, worker_factory(sink, "b") as second:
        sent = await gateway.publish_stream(T0, messages=messages, steps=steps)
        await wait_total([first, second], messages, timeout=60)
        await asyncio.sleep(0.5)  # room for a (wrong) second copy to show up
        stats = [first.stats, second.stats]
    assert sum(s.received for s in stats) == messages
    assert sum(s.acked for s in stats) == messages
    assert all(s.received > 0 for s in stats), stats
    assert sum(s.accepted for s in stats) == sent == messages * steps * 8
    assert sum(s.duplicates + s.conflicts for s in stats) == 0
    rows = await stored(db, meters.values())
    assert len(rows) == sent
    assert Counter(r["meter_id"] for r in rows) == {m: messages * steps for m in meters.values()}

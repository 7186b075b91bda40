"""Soak: one worker drains a queued backlog; prints messages and readings per second."""

from __future__ import annotations

import time

import asyncpg
import pytest

from ingest.sink import IngestSink
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import (
    T0,
    WorkerFactory,
    create_mqtt_meters,
    ensure_gateway_user,
    stored,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(("messages", "channels", "steps"), [(20_000, 8, 1), (2_000, 64, 8)])
async def test_one_worker_drains_a_backlog(
    db: asyncpg.Connection,
    sink: IngestSink,
    broker_url: str,
    gateway_id: str,
    worker_factory: WorkerFactory,
    messages: int,
    channels: int,
    steps: int,
) -> None:
    """Messages span ``messages x steps`` quarter-hours from T0 (stay before today)."""
    meters = await create_mqtt_meters(db, gateway_id, range(1, channels + 1))
    password = ensure_gateway_user(gateway_id)
    async with worker_factory(sink, end_session=False):
        pass  # the session and its subscription now exist: the broker queues for it
    async with MqttGatewaySimulator(
        broker_url, gateway_id, password, channels=range(1, channels + 1), max_inflight=500
    ) as gateway:
        sent = await gateway.publish_stream(T0, messages=messages, steps=steps)
    async with worker_factory(sink) as worker:
        started = time.perf_counter()
        await worker.wait_until(lambda s: s.acked == messages, timeout=600)
        elapsed = time.perf_counter() - started
        assert (worker.stats.received, worker.stats.accepted) == (messages, sent)
    print(
        f"\n{messages} messages x {steps * channels} readings in {elapsed:.2f} s: "
        f"{messages / elapsed:,.0f} messages/s, {sent / elapsed:,.0f} readings/s"
    )
    assert len(await stored(db, meters.values())) == sent

"""A lost connection is re-established and what was not acknowledged comes back.

The connection is taken away without touching the broker: another client logs in with the
worker's client id (a session takeover), receives messages of the session without ever
acknowledging them and leaves; the worker reconnects and gets them redelivered.
"""

from __future__ import annotations

import asyncio
import threading

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collectors.mqtt.broker import BrokerAddress
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import T0, WorkerFactory, create_mqtt_meters, stored

pytestmark = pytest.mark.integration


class Intruder:
    """Takes over a session, receives (never acks), and leaves the session in place."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.address = BrokerAddress.from_url(settings.mqtt())
        self.received = 0
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(self.address.username, self.address.password)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_message = self._on_message

    def _on_message(self, *_: object) -> None:
        self.received += 1

    def take_over(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300
        self.client.connect(
            self.address.host, self.address.port, clean_start=False, properties=props
        )
        self.client.loop_start()
        assert self.connected.wait(10)

    def leave(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_worker_reconnects_and_gets_the_unacked_messages_again(
    db: asyncpg.Connection,
    mqtt_settings: Settings,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    async with worker_factory(sink) as worker:
        await gateway.publish_stream(T0, messages=50)
        await worker.wait_until(lambda s: s.acked == 50, timeout=30)

        intruder = Intruder(mqtt_settings, worker.client_id)
        await asyncio.to_thread(intruder.take_over)
        try:
            await gateway.publish_stream(T0 + 50 * gateway.interval, messages=50)
        finally:
            await asyncio.to_thread(intruder.leave)

        await worker.wait_until(lambda s: s.acked >= 100, timeout=60)
        assert worker.connections >= 2
        stats = worker.stats
    assert stats.conflicts == 0
    assert stats.accepted == 100 * 8
    rows = await stored(db, meters.values())
    assert len(rows) == 100 * 8

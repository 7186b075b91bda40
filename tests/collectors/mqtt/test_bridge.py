"""The bridge: starting against a broker that is away or says no fails fast with a typed
error; at most Receive Maximum messages are unsettled; acks release the rest."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr

from collectors.mqtt.acks import Delivery
from collectors.mqtt.bridge import MqttBridge
from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import (
    BrokerRefusedError,
    BrokerUnavailableError,
)
from collectors.mqtt.topics import shared_filter
from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("mqtt://ingest:x@127.0.0.1:1", BrokerUnavailableError),
        ("mqtt://ingest:wrong-password@{host}:{port}", BrokerRefusedError),
    ],
)
async def test_a_worker_that_cannot_subscribe_does_not_start(
    mqtt_settings: Settings, sink: IngestSink, url: str, error: type[Exception]
) -> None:
    address = BrokerAddress.from_url(mqtt_settings.mqtt())
    url = url.format(host=address.host, port=address.port)
    settings = mqtt_settings.model_copy(update={"mqtt_url": SecretStr(url)})
    started = time.monotonic()
    with pytest.raises(error):
        async with MqttIngestWorker(
            settings, sink, group="never", connect_timeout=2.0, session_expiry=60, end_session=True
        ):
            pass
    assert time.monotonic() - started < 10


def test_the_window_must_fit_in_packet_ids() -> None:
    address = BrokerAddress("127.0.0.1", 1)
    for bad in (0, 65_535, 100_000):
        with pytest.raises(ValueError, match="receive_maximum"):
            MqttBridge(address, client_id="x", topic_filter=shared_filter("g"), receive_maximum=bad)


async def test_no_more_than_receive_maximum_unsettled(
    mqtt_settings: Settings, gateway: MqttGatewaySimulator, gateway_id: str, group: str
) -> None:
    address = BrokerAddress.from_url(mqtt_settings.mqtt())
    bridge = MqttBridge(
        address,
        client_id=f"{group}-bridge",
        topic_filter=shared_filter(group, gateway_id),
        receive_maximum=3,
        session_expiry=0,
    )
    await bridge.start(timeout=20)
    try:
        for n in range(10):
            await gateway.publish_raw(f"message {n}".encode())
        taken: list[bytes] = []
        while len(taken) < 10:
            async with asyncio.timeout(10):
                batch = await bridge.deliveries(100)
            await asyncio.sleep(0.2)  # time for the broker to send more, if it would
            batch += await _more(bridge)
            assert len(batch) <= 3
            taken += [d.payload for d in batch]
            assert bridge.ack(batch) == batch
    finally:
        await bridge.stop(end_session=True)
    assert taken == [f"message {n}".encode() for n in range(10)]


async def _more(bridge: MqttBridge) -> list[Delivery]:
    try:
        async with asyncio.timeout(0.01):
            return await bridge.deliveries(100)
    except TimeoutError:
        return []

"""Starting against a broker that is away or says no fails fast, with a typed error."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import SecretStr

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

pytestmark = pytest.mark.integration


def _paho_threads() -> int:
    return sum(t.name.startswith("paho-mqtt-client-") for t in threading.enumerate())


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
    threads = _paho_threads()
    started = time.monotonic()
    with pytest.raises(error):
        async with MqttIngestWorker(
            settings, sink, group="never", connect_timeout=2.0, session_expiry=60, end_session=True
        ):
            pass
    assert time.monotonic() - started < 10
    assert _paho_threads() == threads


def test_the_window_must_fit_in_packet_ids() -> None:
    address = BrokerAddress("127.0.0.1", 1)
    for bad in (0, 65_535, 100_000):
        with pytest.raises(ValueError, match="receive_maximum"):
            MqttBridge(address, client_id="x", topic_filter=shared_filter("g"), receive_maximum=bad)

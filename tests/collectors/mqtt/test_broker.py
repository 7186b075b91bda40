from __future__ import annotations

import pytest

from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import MqttUrlError


def test_from_url() -> None:
    address = BrokerAddress.from_url("mqtt://ingest:p%40ss@127.0.0.1:18830")
    assert address == BrokerAddress("127.0.0.1", 18830, "ingest", "p@ss", tls=False)
    assert "p@ss" not in repr(address)


def test_defaults_and_tls() -> None:
    assert BrokerAddress.from_url("mqtt://localhost") == BrokerAddress("localhost", 1883)
    assert BrokerAddress.from_url("mqtts://localhost/") == BrokerAddress(
        "localhost", 8883, tls=True
    )


def test_with_credentials() -> None:
    gateway = BrokerAddress.from_url("mqtt://ingest:x@h:1").with_credentials("gw-1", "pw")
    assert gateway == BrokerAddress("h", 1, "gw-1", "pw")


@pytest.mark.parametrize(
    "url", ["http://h:1", "mqtt://", "mqtt://h:99999", "mqtt://h:1/topic", "mqtt://h?x=1", "h:1"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(MqttUrlError):
        BrokerAddress.from_url(url)

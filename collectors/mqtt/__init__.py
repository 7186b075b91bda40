"""MQTT gateways: the v1 topic scheme and payload (pure, importable by simulators) and the
ingest worker (`collectors.mqtt.worker.MqttIngestWorker`, imported on its own because it
pulls in paho-mqtt, asyncpg and the ingest path). See ``docs/mqtt.md``.

Example::

    from collectors.mqtt import parse_payload, readings_topic

    parsed = parse_payload(body, gateway_id="gw-0001", resolve=lambda ch, ts: meters.get(ch))
"""

from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import (
    BrokerRefusedError,
    BrokerUnavailableError,
    MqttError,
    MqttUrlError,
    ResolverUnavailableError,
    SubscriptionRefusedError,
)
from collectors.mqtt.payload import (
    VERSION,
    ParsedPayload,
    Resolve,
    encode_payload,
    parse_payload,
    source_of,
)
from collectors.mqtt.topics import PREFIX, gateway_of, readings_topic, shared_filter

__all__ = [
    "PREFIX",
    "VERSION",
    "BrokerAddress",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "MqttError",
    "MqttUrlError",
    "ParsedPayload",
    "Resolve",
    "ResolverUnavailableError",
    "SubscriptionRefusedError",
    "encode_payload",
    "gateway_of",
    "parse_payload",
    "readings_topic",
    "shared_filter",
    "source_of",
]

"""The MQTT collector's error tree: one root, `MqttError`, under `CollectorError`."""

from __future__ import annotations

from collectors.errors import CollectorError, TransportError

__all__ = [
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "MqttError",
    "MqttUrlError",
    "ResolverUnavailableError",
    "SubscriptionRefusedError",
]


class MqttError(CollectorError):
    """Root of every MQTT collector failure."""

    code = "mqtt_error"


class MqttUrlError(MqttError, ValueError):
    """A broker URL that is not ``mqtt://[user[:password]@]host[:port]`` (or ``mqtts://``)."""

    code = "mqtt_url"


class BrokerUnavailableError(MqttError, TransportError):
    """The broker could not be reached (or did not let us subscribe) within the timeout."""

    code = "mqtt_broker_unavailable"


class BrokerRefusedError(MqttError, TransportError):
    """The broker refused the connection (bad credentials, not authorised, banned ...).

    ``reason_code`` is the MQTT 5 CONNACK reason code (e.g. 134 bad user name or password).
    """

    code = "mqtt_broker_refused"

    def __init__(self, reason_code: int, reason: str) -> None:
        self.reason_code = reason_code
        super().__init__(f"broker refused the connection: {reason} ({reason_code})")


class SubscriptionRefusedError(MqttError):
    """The broker refused a subscription (ACL, or shared subscriptions unsupported)."""

    code = "mqtt_subscription_refused"

    def __init__(self, topic_filter: str, reason_code: int, reason: str) -> None:
        self.topic_filter = topic_filter
        self.reason_code = reason_code
        super().__init__(f"subscription to {topic_filter!r} refused: {reason} ({reason_code})")


class ResolverUnavailableError(MqttError):
    """Channels cannot be mapped to meters: the database is away and nothing is cached."""

    code = "mqtt_resolver_unavailable"

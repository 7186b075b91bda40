"""Where the broker is and who we are to it: `BrokerAddress`, parsed from a URL. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from collectors.mqtt.errors import MqttUrlError

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A broker endpoint and the credentials to log in with.

    Example::

        BrokerAddress.from_url("mqtt://ingest:s3cret@127.0.0.1:18830")
        # BrokerAddress(host='127.0.0.1', port=18830, username='ingest', tls=False)
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt://[user[:password]@]host[:port]``; ``mqtts://`` means TLS."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise MqttUrlError(f"not a broker URL: {exc}") from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise MqttUrlError(f"broker URL scheme must be mqtt or mqtts, not {parts.scheme!r}")
        if not parts.hostname:
            raise MqttUrlError("broker URL has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise MqttUrlError("broker URL must not carry a path, query or fragment")
        return cls(
            host=parts.hostname,
            port=port or _DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "mqtts",
        )

    def with_credentials(self, username: str, password: str) -> BrokerAddress:
        """The same endpoint, logging in as someone else (e.g. a gateway)."""
        return BrokerAddress(self.host, self.port, username, password, self.tls)

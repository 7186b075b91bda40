"""Where a Modbus link goes: a URL naming a TCP gateway, an RTU-over-TCP gateway or a serial bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args
from urllib.parse import parse_qsl, urlsplit

from collectors.errors import CollectorError
from meterhub.errors import ConfigurationError

Scheme = Literal["tcp", "rtu+tcp", "serial"]
Parity = Literal["N", "E", "O"]

DEFAULT_PORT = 502
_SERIAL_KEYS = frozenset({"baud", "parity", "bytesize", "stopbits"})


class EndpointError(CollectorError, ConfigurationError):
    """A link URL that cannot be parsed or names an unsupported option."""

    code = "bad_endpoint"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed link URL; `host` is the device path (or a pyserial URL) for ``serial``."""

    scheme: Scheme
    host: str
    port: int = DEFAULT_PORT
    baudrate: int = 9600
    parity: Parity = "N"
    bytesize: int = 8
    stopbits: int = 1

    @property
    def url(self) -> str:
        """The canonical URL: equal endpoints give equal URLs."""
        if self.scheme == "serial":
            query = f"baud={self.baudrate}&parity={self.parity}"
            query += f"&bytesize={self.bytesize}&stopbits={self.stopbits}"
            return f"serial://{self.host}?{query}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def rtu_framing(self) -> bool:
        """True when frames carry a CRC and no transaction id (``rtu+tcp``, ``serial``)."""
        return self.scheme != "tcp"


def parse_endpoint(url: str) -> Endpoint:
    """Parse ``tcp://host[:port]``, ``rtu+tcp://host[:port]`` or ``serial:///dev/x?baud=..``.

    The port defaults to 502. Serial options: ``baud`` (default 9600), ``parity``
    (N, E or O; default N), ``bytesize`` (7 or 8) and ``stopbits`` (1 or 2). Raises
    `EndpointError` for anything else.

    Example::

        >>> parse_endpoint("serial:///dev/ttyUSB0?baud=2400&parity=E").parity
        'E'
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in get_args(Scheme):
            raise EndpointError(f"{url!r}: scheme must be one of {get_args(Scheme)}")
        if scheme == "serial":
            return _serial(url, parts.netloc, parts.path, parts.query)
        if parts.path not in ("", "/") or parts.query or not parts.hostname:
            raise EndpointError(f"{url!r}: expected {scheme}://host[:port]")
        port = DEFAULT_PORT if parts.port is None else parts.port
        if not 0 < port < 0x10000:
            raise EndpointError(f"{url!r}: port must be 1..65535")
        return Endpoint(cast(Scheme, scheme), parts.hostname, port)
    except ValueError as exc:  # urlsplit and .port raise ValueError on bad ports or hosts
        raise EndpointError(f"{url!r}: {exc}") from exc


def _serial(url: str, netloc: str, path: str, query: str) -> Endpoint:
    if netloc or not path.startswith("/") or len(path) < 2:
        raise EndpointError(f"{url!r}: expected serial:///path/to/device?baud=9600")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    if unknown := sorted(set(options) - _SERIAL_KEYS):
        raise EndpointError(f"{url!r}: unknown options {unknown}; allowed {sorted(_SERIAL_KEYS)}")
    parity = options.get("parity", "N").upper()
    if parity not in get_args(Parity):
        raise EndpointError(f"{url!r}: parity must be N, E or O")
    return Endpoint(
        "serial",
        path,
        0,
        baudrate=_int(options.get("baud", "9600"), url, "baud", allowed=range(50, 4_000_001)),
        parity=cast(Parity, parity),
        bytesize=_int(options.get("bytesize", "8"), url, "bytesize", allowed=(7, 8)),
        stopbits=_int(options.get("stopbits", "1"), url, "stopbits", allowed=(1, 2)),
    )


def _int(text: str, url: str, key: str, *, allowed: range | tuple[int, ...]) -> int:
    if not text.isdigit() or int(text) not in allowed:
        raise EndpointError(f"{url!r}: {key} must be an integer in {allowed}, got {text!r}")
    return int(text)

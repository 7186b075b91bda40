"""Bus URLs from the meter registry, and `BusPool`: one `Bus` object per bus.

* ``tcp://host:port``: a TCP transparent serial server (`TcpBus`);
* ``dtu://<dtu_id>``: the bus behind a DTU that dials in to a `DtuListener` (`DtuBus`);
* ``serial:///dev/ttyUSB0?baud=2400&parity=E``: a local port (`SerialBus`); also
  ``bytesize`` and ``stopbits``; 2400 baud 8E1 by default.

Every scheme takes ``gap_ms``, the inter-frame gap in milliseconds (default 50).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast, get_args
from urllib.parse import parse_qsl, urlsplit

from collectors.errors import CollectorError

from .bus import DEFAULT_GAP, Bus
from .dtu import DtuListener
from .transport import Parity, SerialBus, TcpBus

__all__ = [
    "BusPool",
    "BusTarget",
    "BusUrlError",
    "DtuTarget",
    "SerialTarget",
    "TcpTarget",
    "open_bus",
    "parse_bus_url",
]


class BusUrlError(CollectorError, ValueError):
    """A bus URL that names no usable bus, or conflicts with one already in the pool."""

    code = "bus_url"


@dataclass(frozen=True, slots=True)
class TcpTarget:
    host: str
    port: int
    gap: float | None = None

    @property
    def key(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DtuTarget:
    dtu_id: str
    gap: float | None = None

    @property
    def key(self) -> str:
        return f"dtu://{self.dtu_id}"


@dataclass(frozen=True, slots=True)
class SerialTarget:
    device: str
    baudrate: int = 2400
    parity: Parity = "E"
    bytesize: int = 8
    stopbits: float = 1
    gap: float | None = None

    @property
    def key(self) -> str:
        return f"serial://{self.device}"


BusTarget = TcpTarget | DtuTarget | SerialTarget


def _number(query: dict[str, str], name: str, url: str, allowed: tuple[float, ...] = ()) -> float:
    try:
        value = float(query[name])
    except ValueError:
        raise BusUrlError(f"{name}={query[name]!r} in {url} is not a number") from None
    if value < 0 or (allowed and value not in allowed):
        raise BusUrlError(f"{name}={query[name]} in {url} is out of range")
    return value


def _serial(device: str, query: dict[str, str], url: str) -> SerialTarget:
    parity = query.get("parity", "E").upper()
    if parity not in get_args(Parity):
        raise BusUrlError(f"parity {parity!r} in {url} is not one of N, E, O, M, S")
    baud = int(_number(query, "baud", url)) if "baud" in query else 2400
    bytesize = int(_number(query, "bytesize", url, (5, 6, 7, 8))) if "bytesize" in query else 8
    stopbits = _number(query, "stopbits", url, (1, 1.5, 2)) if "stopbits" in query else 1
    if baud <= 0:
        raise BusUrlError(f"baud rate in {url} must be positive")
    return SerialTarget(device, baud, cast(Parity, parity), bytesize, stopbits)


def parse_bus_url(url: str) -> BusTarget:
    """Parse a registry bus URL; `BusUrlError` if it names no bus.

    Example::

        >>> parse_bus_url("serial:///dev/ttyUSB0?baud=9600&gap_ms=20")
        SerialTarget(device='/dev/ttyUSB0', baudrate=9600, parity='E', ..., gap=0.02)
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(pairs)
    allowed = {"tcp": {"gap_ms"}, "dtu": {"gap_ms"}}.get(
        parts.scheme, {"gap_ms", "baud", "parity", "bytesize", "stopbits"}
    )
    if len(query) != len(pairs) or not set(query) <= allowed:
        raise BusUrlError(f"unknown or repeated query parameters in {url}")
    gap = _number(query, "gap_ms", url) / 1000 if "gap_ms" in query else None
    target: BusTarget
    if parts.scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise BusUrlError(f"bad port in {url}") from None
        if not host or port is None or parts.path not in ("", "/"):
            raise BusUrlError(f"{url} is not tcp://host:port")
        target = TcpTarget(host, port)
    elif parts.scheme == "dtu":
        if not parts.netloc or parts.path not in ("", "/"):
            raise BusUrlError(f"{url} is not dtu://<dtu id>")
        target = DtuTarget(parts.netloc)
    elif parts.scheme == "serial":
        device = parts.path or parts.netloc
        if not device or (parts.netloc and parts.path):
            raise BusUrlError(f"{url} is not serial:///dev/<port>")
        target = _serial(device, query, url)
    else:
        raise BusUrlError(f"{url}: scheme must be tcp, dtu or serial")
    return dataclasses.replace(target, gap=gap)


def open_bus(
    url: str,
    *,
    dtu_listener: DtuListener | None = None,
    gap: float = DEFAULT_GAP,
    connect_timeout: float = 5.0,
) -> Bus:
    """A new bus for ``url`` (connecting lazily, on its first request); prefer `BusPool`.

    ``gap`` applies where the URL has no ``gap_ms``, except to ``dtu://`` buses, which
    keep their listener's gap unless the URL sets one. Example:
    ``open_bus("tcp://127.0.0.1:4001?gap_ms=80")``.
    """
    return _open_target(
        parse_bus_url(url), url, dtu_listener=dtu_listener, gap=gap, connect_timeout=connect_timeout
    )


def _open_target(
    target: BusTarget,
    url: str,
    *,
    dtu_listener: DtuListener | None,
    gap: float,
    connect_timeout: float,
) -> Bus:
    """`open_bus` for an already parsed ``url``."""
    gap = gap if target.gap is None else target.gap
    if isinstance(target, TcpTarget):
        return TcpBus(target.host, target.port, gap=gap, connect_timeout=connect_timeout, url=url)
    if isinstance(target, SerialTarget):
        return SerialBus(
            target.device,
            baudrate=target.baudrate,
            parity=target.parity,
            bytesize=target.bytesize,
            stopbits=target.stopbits,
            gap=gap,
            connect_timeout=connect_timeout,
            url=url,
        )
    if dtu_listener is None:
        raise BusUrlError(f"{url} needs a DtuListener")
    bus = dtu_listener.bus(target.dtu_id)
    if target.gap is not None:
        bus.gap = target.gap
    return bus


class BusPool:
    """One bus object per bus, shared by every meter whose registry entry names it.

    URLs naming the same bus (same host and port, DTU id, or device) return the same
    object; differing settings for one bus raise `BusUrlError`. Example::

        async with BusPool(dtu_listener=listener) as pool:
            bus = pool.get("tcp://127.0.0.1:4001")
            assert pool.get("tcp://127.0.0.1:4001/") is bus
    """

    def __init__(
        self,
        *,
        dtu_listener: DtuListener | None = None,
        gap: float = DEFAULT_GAP,
        connect_timeout: float = 5.0,
    ) -> None:
        self._listener = dtu_listener
        self._gap = gap
        self._connect_timeout = connect_timeout
        self._buses: dict[str, tuple[BusTarget, Bus]] = {}
        self._by_url: dict[str, Bus] = {}

    def get(self, url: str) -> Bus:
        """The bus ``url`` names; a URL seen before is not parsed again."""
        if (bus := self._by_url.get(url)) is None:
            bus = self._by_url[url] = self._bus_for(url)
        return bus

    def _bus_for(self, url: str) -> Bus:
        parsed = parse_bus_url(url)
        target = parsed if parsed.gap is not None else dataclasses.replace(parsed, gap=self._gap)
        known = self._buses.get(target.key)
        if known is not None:
            if known[0] != target:
                raise BusUrlError(f"{url} conflicts with {known[1].url} for the same bus")
            return known[1]
        bus = _open_target(
            parsed,
            url,
            dtu_listener=self._listener,
            gap=self._gap,
            connect_timeout=self._connect_timeout,
        )
        self._buses[target.key] = (target, bus)
        return bus

    async def aclose(self) -> None:
        """Close every bus (DTU links stay open: their listener owns them)."""
        buses, self._buses, self._by_url = [bus for _, bus in self._buses.values()], {}, {}
        for bus in buses:
            await bus.aclose()

    async def __aenter__(self) -> BusPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

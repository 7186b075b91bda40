"""4G DTUs that dial in to meterhub: registration, heartbeats, one `DtuBus` per DTU id.

Wire format (every part configurable through `DtuFormat`):

* registration: the first bytes on a new connection. Default ``REG:<id>\\r\\n``, the id
  being 1-64 of ``[0-9A-Za-z_.-]``. Any regex whose group 1 is the id works, e.g.
  ``rb"(\\d{15})\\r\\n"`` for an IMEI; with ``id_as_hex`` a binary id becomes upper-case hex.
  A connection that sends no registration within ``registration_timeout`` is closed.
* heartbeat: a received chunk made only of heartbeat packets (default ``HB``, optionally
  ended by CR LF) is swallowed; like any traffic it keeps the link alive.
* everything else is bus traffic (meter replies), read by the `DtuBus`.

A DTU that registers again with the same id replaces (and closes) its old link; a link
with no traffic for ``idle_timeout`` seconds is closed as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from collectors.errors import TransportError
from meterhub.logs import get_logger

from .bus import DEFAULT_GAP, Bus, Link
from .transport import StreamLink

__all__ = ["DtuBus", "DtuFormat", "DtuListener"]

_log = get_logger(__name__)
_ID_RE = re.compile(r"[0-9A-Za-z_.-]{1,64}")

LINKS = Gauge("meterhub_dtu_links", "Registered DTU links currently open")
REGISTRATIONS = Counter(
    "meterhub_dtu_registrations_total", "DTU registrations, by outcome", ["outcome"]
)
HEARTBEATS = Counter("meterhub_dtu_heartbeats_total", "DTU heartbeat packets swallowed")


@dataclass(frozen=True, slots=True)
class DtuFormat:
    """How DTUs introduce themselves and keep their link.

    Example: ``DtuFormat(registration=re.compile(rb"(\\d{15})\\r\\n"))`` for DTUs that
    send their IMEI and CR LF.
    """

    registration: re.Pattern[bytes] = re.compile(rb"REG:([0-9A-Za-z_.-]{1,64})\r\n")
    heartbeat: re.Pattern[bytes] = re.compile(rb"(?:HB(?:\r\n)?)+")
    id_as_hex: bool = False
    max_registration: int = 256

    def dtu_id(self, match: re.Match[bytes]) -> str:
        """The DTU id a registration match names; `ValueError` if it is unusable."""
        raw = match.group(1) if self.registration.groups else match.group(0)
        text = raw.hex().upper() if self.id_as_hex else raw.decode("ascii")
        if not _ID_RE.fullmatch(text):
            raise ValueError(f"DTU id {text!r} is not 1-64 of [0-9A-Za-z_.-]")
        return text


class _DtuLink(StreamLink):
    """One DTU connection: registration first, then heartbeats and bus traffic."""

    def __init__(self, listener: DtuListener) -> None:
        super().__init__()
        self._listener = listener
        self._format = listener.format
        self._pending = bytearray()
        self._expiry: asyncio.TimerHandle | None = None
        self.dtu_id: str | None = None
        self.heartbeats = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._listener.links.add(self)
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self._listener.registration_timeout, self._reject, "late")

    def data_received(self, data: bytes) -> None:
        if self.dtu_id is None:
            data = self._register(data)
            if not data:
                return
        if self._format.heartbeat.fullmatch(data):
            self.last_seen = asyncio.get_running_loop().time()
            self.heartbeats += 1
            HEARTBEATS.inc()
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._expiry is not None:
            self._expiry.cancel()
        self._listener.lost(self)

    def _register(self, data: bytes) -> bytes:
        """Collect the registration; return the bytes that follow it."""
        self._pending += data
        match = self._format.registration.match(self._pending)
        if match is None:
            if len(self._pending) > self._format.max_registration:
                self._reject("unrecognised")
            return b""
        try:
            self.dtu_id = self._format.dtu_id(match)
        except ValueError as exc:
            self._reject(str(exc))
            return b""
        rest = bytes(self._pending[match.end() :])
        self._pending.clear()
        if self._expiry is not None:
            self._expiry.cancel()
        self.last_seen = asyncio.get_running_loop().time()
        self._listener.registered(self)
        return rest

    def _reject(self, reason: str) -> None:
        if self.dtu_id is None and not self.is_closed:
            REGISTRATIONS.labels("rejected").inc()
            _log.warning("dtu.registration_rejected", reason=reason, head=self._pending[:32].hex())
            self.close()


class DtuBus(Bus):
    """The RS-485 bus behind one DTU, whichever connection the DTU currently holds.

    Obtained from `DtuListener.bus`; the object stays the same across reconnects, so its
    lock and gap span them. `TransportError` while the DTU is not connected.
    """

    transport = "dtu"

    def __init__(self, dtu_id: str, *, gap: float, idle_timeout: float) -> None:
        super().__init__(f"dtu://{dtu_id}", gap=gap)
        self.dtu_id = dtu_id
        self.idle_timeout = idle_timeout
        self._link: _DtuLink | None = None
        self._up = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.is_closed

    @property
    def heartbeats(self) -> int:
        """Heartbeats received on the current link."""
        return self._link.heartbeats if self._link is not None else 0

    async def wait_connected(self, *, timeout: float) -> None:
        """Wait until the DTU has registered; `TimeoutError` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while not self.connected:
                if self._link is not None:
                    await self._link.wait_closed()
                else:
                    await self._up.wait()

    def attach(self, link: _DtuLink) -> bool:
        """Make ``link`` the current one; close and return True for a replaced link."""
        old, self._link = self._link, link
        self._up.set()
        if old is None or old is link:
            return False
        old.close()
        return True

    def detach(self, link: _DtuLink) -> None:
        if self._link is link:
            self._link = None
            self._up.clear()

    def expire_idle(self, now: float) -> None:
        link = self._link
        if link is not None and now - link.last_seen > self.idle_timeout:
            _log.warning("dtu.link_idle", dtu=self.dtu_id, idle=round(now - link.last_seen, 1))
            link.close()
            self.detach(link)

    async def aclose(self) -> None:
        """Nothing to do: the `DtuListener` owns DTU links."""

    async def _get_link(self) -> Link:
        self.expire_idle(asyncio.get_running_loop().time())
        if self._link is None or not self.connected:
            raise TransportError(f"DTU {self.dtu_id} is not connected")
        return self._link

    def _drop_link(self, link: Link) -> None:
        link.close()
        if isinstance(link, _DtuLink):
            self.detach(link)


class DtuListener:
    """Accepts DTU connections on ``host:port``; `bus` gives the `DtuBus` of a DTU id.

    Example::

        async with DtuListener("0.0.0.0", 9000, idle_timeout=180) as listener:
            bus = listener.bus("YW0001")
            await bus.wait_connected(timeout=60)
            values = await read_meter(bus, "000102030425", timeout=5.0)
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 9000,
        *,
        dtu_format: DtuFormat | None = None,
        idle_timeout: float = 180.0,
        registration_timeout: float = 10.0,
        gap: float = DEFAULT_GAP,
    ) -> None:
        self.host, self._port = host, port
        self.format = dtu_format or DtuFormat()
        self.idle_timeout = idle_timeout
        self.registration_timeout = registration_timeout
        self.gap = gap
        self.links: set[_DtuLink] = set()
        self._buses: dict[str, DtuBus] = {}
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def bus(self, dtu_id: str) -> DtuBus:
        """The bus of ``dtu_id``, created on first use (the DTU may connect later)."""
        if dtu_id not in self._buses:
            self._buses[dtu_id] = DtuBus(dtu_id, gap=self.gap, idle_timeout=self.idle_timeout)
        return self._buses[dtu_id]

    def connected(self) -> frozenset[str]:
        """Ids of the DTUs with an open link."""
        return frozenset(key for key, bus in self._buses.items() if bus.connected)

    def registered(self, link: _DtuLink) -> None:
        assert link.dtu_id is not None
        replaced = self.bus(link.dtu_id).attach(link)
        REGISTRATIONS.labels("replaced" if replaced else "new").inc()
        LINKS.inc()
        _log.info("dtu.registered", dtu=link.dtu_id, replaced=replaced)

    def lost(self, link: _DtuLink) -> None:
        self.links.discard(link)
        if link.dtu_id is not None:
            LINKS.dec()
            self.bus(link.dtu_id).detach(link)
            _log.info("dtu.disconnected", dtu=link.dtu_id)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _DtuLink(self), self.host, self._port)
        self._sweeper = asyncio.create_task(self._sweep(), name="dtu-idle-sweep")

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._server is not None:
            self._server.close()
        links = list(self.links)
        for link in links:
            link.close()
        await asyncio.gather(*(link.wait_closed() for link in links))
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> DtuListener:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.idle_timeout / 4, 5.0))
            for bus in list(self._buses.values()):
                bus.expire_idle(loop.time())

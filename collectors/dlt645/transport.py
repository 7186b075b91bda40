"""Links under a `Bus`: a TCP transparent serial server (`TcpBus`) and a serial port
(`SerialBus`), both over `StreamLink`, the buffered asyncio protocol `DtuBus` shares."""

from __future__ import annotations

import abc
import asyncio
import socket
import termios
from typing import Literal, cast

import serial_asyncio

from collectors.errors import TransportError

from .bus import DEFAULT_GAP, Bus, Link

__all__ = ["Parity", "SerialBus", "StreamLink", "TcpBus"]

#: Serial parity as pyserial spells it: none, even, odd, mark, space.
Parity = Literal["N", "E", "O", "M", "S"]


class StreamLink(asyncio.Protocol):
    """The bytes of one connection, buffered until a `Bus` reads or discards them.

    Keeps at most ``max_buffer`` bytes (the newest) while nobody reads, and
    ``last_seen`` (loop time of the last byte) for liveness checks.
    """

    max_buffer = 4096

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = asyncio.Event()
        self._error: BaseException | None = None
        self.opened = asyncio.Event()
        self.last_seen = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A write transport, though uvloop's are no subclasses of asyncio's: not isinstance.
        self._transport = cast(asyncio.WriteTransport, transport)
        self.opened.set()

    def data_received(self, data: bytes) -> None:
        self.last_seen = asyncio.get_running_loop().time()
        self._buffer += data
        del self._buffer[: -self.max_buffer]
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._error = exc
        self._closed.set()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _settle(self._waiter)

    @property
    def is_closed(self) -> bool:
        transport = self._transport
        return self._closed.is_set() or (transport is not None and transport.is_closing())

    def discard(self) -> int:
        count = len(self._buffer)
        self._buffer.clear()
        return count

    def write(self, data: bytes) -> None:
        if self._transport is None or self.is_closed:
            raise TransportError(f"link closed before writing: {self._error or 'closed'}")
        self._transport.write(data)

    async def read(self, timeout: float) -> bytes:
        if not self._buffer and not self._closed.is_set():
            await self._wait(timeout)
            if not self._buffer and not self._closed.is_set():
                return b""  # timed out
        if self._buffer:
            data = bytes(self._buffer)
            self.discard()
            return data
        raise TransportError(f"link lost: {self._error or 'closed by the peer'}")

    async def _wait(self, timeout: float) -> None:
        """Until bytes arrive, the link closes or ``timeout`` s pass. One future and one
        timer instead of an Event and `asyncio.timeout`: this runs for every reply of tens
        of thousands of meters a minute."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _LinkBus(Bus):
    """A bus that opens its own `StreamLink` lazily and reopens it after a failure."""

    def __init__(self, url: str, *, gap: float, connect_timeout: float) -> None:
        super().__init__(url, gap=gap)
        self.connect_timeout = connect_timeout
        self._link: StreamLink | None = None

    @abc.abstractmethod
    async def _open(self) -> StreamLink:
        """Open a new link; may raise `OSError`."""

    async def _get_link(self) -> Link:
        if self._link is None or self._link.is_closed:
            self._link = None
            try:
                async with asyncio.timeout(self.connect_timeout):
                    link = await self._open()
            except (OSError, TimeoutError) as exc:
                raise TransportError(f"cannot open {self.url}: {exc or 'timed out'}") from exc
            await link.opened.wait()  # pyserial-asyncio connects on the next loop turn
            self._link = link
        return self._link

    def _drop_link(self, link: Link) -> None:
        link.close()
        if link is self._link:
            self._link = None

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.is_closed

    async def aclose(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()
            await link.wait_closed()


class TcpBus(_LinkBus):
    """Meters behind a TCP transparent serial server (one TCP connection = the bus).

    Connects on the first request and again after a failure. Example::

        async with TcpBus("127.0.0.1", 4001, gap=0.05) as bus:
            values = await read_meter(bus, "000102030425", timeout=2.0)
    """

    transport = "tcp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        gap: float = DEFAULT_GAP,
        connect_timeout: float = 5.0,
        url: str | None = None,
    ) -> None:
        super().__init__(url or f"tcp://{host}:{port}", gap=gap, connect_timeout=connect_timeout)
        self.host, self.port = host, port

    async def _open(self) -> StreamLink:
        loop = asyncio.get_running_loop()
        transport, link = await loop.create_connection(StreamLink, self.host, self.port)
        _keep_alive(transport.get_extra_info("socket"))
        return link


def _keep_alive(sock: socket.socket | None) -> None:
    """Notice a dead gateway path in about a minute instead of TCP's default hours."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # unacknowledged requests: give up after 60 s
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 60_000)


class SerialBus(_LinkBus):
    """Meters on a local RS-485 adapter, through pyserial-asyncio (8E1 at 2400 baud default).

    Example::

        async with SerialBus("/dev/ttyUSB0", baudrate=2400, parity="E") as bus:
            address = await read_address(bus, timeout=1.0)
    """

    transport = "serial"

    def __init__(
        self,
        device: str,
        *,
        baudrate: int = 2400,
        parity: Parity = "E",
        bytesize: int = 8,
        stopbits: float = 1,
        gap: float = DEFAULT_GAP,
        connect_timeout: float = 5.0,
        url: str | None = None,
    ) -> None:
        query = f"baud={baudrate}&parity={parity}"
        super().__init__(
            url or f"serial://{device}?{query}", gap=gap, connect_timeout=connect_timeout
        )
        self.device, self.baudrate, self.parity = device, baudrate, parity
        self.bytesize, self.stopbits = bytesize, stopbits

    async def _open(self) -> StreamLink:
        loop = asyncio.get_running_loop()
        link: StreamLink
        try:
            _, link = await serial_asyncio.create_serial_connection(
                loop,
                StreamLink,
                self.device,
                baudrate=self.baudrate,
                parity=self.parity,
                bytesize=self.bytesize,
                stopbits=self.stopbits,
            )
        except (termios.error, ValueError) as exc:  # settings the port refuses
            raise TransportError(f"cannot configure {self.url}: {exc}") from exc
        return link

"""DL/T 645 meters on a simulated RS-485 bus, behind a simulated TCP transparent gateway.

`SimulatedBus` is the half-duplex line: only the addressed meter answers (a wildcard
address that several meters match makes their replies collide into garbage), the others
stay silent, and a request that arrives while a reply is on the wire is garbled and
lost. It records every request (`Exchange`) and counts requests that arrived while an
earlier reply was still pending (``overlaps``). `Dlt645GatewaySimulator` serves one bus
over TCP, like a transparent serial server, and can go offline; `SimulatedDtu`
(`simulators.dtu_client`) serves one over a dial-out DTU link.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from collectors.dlt645.codec import BROADCAST, Frame, FrameReader, Function, address_matches
from meterhub.reading import LOCAL_TZ

from .dlt645_meter import Dlt645Meter, LinearProvider, ValueProvider
from .line_speed import DLT645_TURNAROUND, dlt645_line

__all__ = ["Dlt645GatewaySimulator", "Exchange", "SimulatedBus"]

_READS = (Function.READ, Function.READ_FOLLOWUP)


@dataclass(slots=True)
class Exchange:
    """One request seen on the line (loop times); ``answered_at`` None if nobody answered."""

    address: str
    function: int
    di: int | None
    received_at: float
    answered_at: float | None = None


def _collide(replies: list[bytes]) -> bytes:
    """Several meters talking at once: the line carries the OR of their bytes."""
    size = max(len(reply) for reply in replies)
    padded = [reply.ljust(size, b"\x00") for reply in replies]
    return bytes(functools.reduce(operator.or_, column) for column in zip(*padded, strict=True))


class SimulatedBus:
    """Meters on one RS-485 line. ``baud`` > 0 runs it at line speed (`line_speed.dlt645_line`:
    11 bits per byte, 8E1): a request takes its frame time to arrive, the meter answers
    ``turnaround`` s later (default: the standard's minimum, 20 ms) and its reply takes its
    frame time on the wire, one reply at a time; 0 answers at once (and ``turnaround`` is
    ignored). ``clock`` is the simulation's wall clock (aware datetime).

    Example::

        bus = SimulatedBus([Dlt645Meter("000000000001")], provider=LinearProvider())
    """

    def __init__(
        self,
        meters: Iterable[Dlt645Meter],
        *,
        provider: ValueProvider | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        baud: int = 0,
        turnaround: float = DLT645_TURNAROUND,
    ) -> None:
        self.meters = {meter.address: meter for meter in meters}
        self.provider: ValueProvider = provider or LinearProvider()
        self.clock = clock or (lambda: dt.datetime.now(LOCAL_TZ))
        self.timing = dlt645_line(baud, turnaround=turnaround) if baud else None
        self.byte_time = self.timing.char_time if self.timing else 0.0
        self.exchanges: list[Exchange] = []
        self.overlaps = 0
        self.collisions = 0
        #: Held while a reply is on the wire; a DTU sends heartbeats only between replies.
        self.line = asyncio.Lock()
        self._pending = 0
        self._transmitting = False

    def gaps(self) -> list[float]:
        """Quiet time before each request that followed an answered one (s)."""
        pairs = zip(self.exchanges, self.exchanges[1:], strict=False)
        return [b.received_at - a.answered_at for a, b in pairs if a.answered_at is not None]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests arriving on ``reader`` until it ends."""
        frames = FrameReader()
        replies: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(1024):
                for item in frames.feed(data):
                    if isinstance(item, Frame) and not item.control.is_reply:
                        self._dispatch(item, writer, replies)
        except ConnectionError:
            pass
        finally:
            for task in replies:
                task.cancel()
            await asyncio.gather(*replies, return_exceptions=True)

    def _dispatch(
        self, request: Frame, writer: asyncio.StreamWriter, replies: set[asyncio.Task[None]]
    ) -> None:
        loop = asyncio.get_running_loop()
        if self._transmitting:
            self.collisions += 1
            return
        if self._pending:
            self.overlaps += 1
        function = request.control.function
        di = int.from_bytes(request.data[:4], "little") if function in _READS else None
        exchange = Exchange(request.address, function, di, loop.time())
        self.exchanges.append(exchange)
        if request.address == BROADCAST:
            return
        now = self.clock()
        if "A" in request.address:  # a wildcard: every meter it matches answers
            matching = [m for a, m in self.meters.items() if address_matches(request.address, a)]
        else:
            matching = [m] if (m := self.meters.get(request.address)) is not None else []
        answers = [(meter, meter.respond(request, now, self.provider)) for meter in matching]
        sent = [(meter, reply) for meter, reply in answers if reply is not None]
        if not sent:
            return
        data = sent[0][1] if len(sent) == 1 else _collide([reply for _, reply in sent])
        delay = max(meter.reply_delay + meter.faults.late_answer for meter, _ in sent)
        if self.timing is not None:  # the request's frame (4 FE preamble bytes in) and turnaround
            delay += self.timing.request(16 + len(request.data))
        self._pending += 1
        task = loop.create_task(self._transmit(data, delay, writer, exchange))
        replies.add(task)
        task.add_done_callback(replies.discard)

    async def _transmit(
        self, data: bytes, delay: float, writer: asyncio.StreamWriter, exchange: Exchange
    ) -> None:
        try:
            await asyncio.sleep(delay)
            async with self.line:
                self._transmitting = True
                try:
                    if self.byte_time:
                        await asyncio.sleep(len(data) * self.byte_time)
                    if not writer.is_closing():
                        writer.write(data)
                    exchange.answered_at = asyncio.get_running_loop().time()
                finally:
                    self._transmitting = False
        finally:
            self._pending -= 1


class Dlt645GatewaySimulator:
    """A TCP transparent serial server with ``bus`` behind it, on ``host:port`` (0: any).

    Example::

        gateway_bus = SimulatedBus([Dlt645Meter("000000000001")])
        async with Dlt645GatewaySimulator(gateway_bus) as gateway:
            async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
                values = await read_meter(bus, "000000000001", timeout=1.0)
    """

    def __init__(self, bus: SimulatedBus, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bus = bus
        self.host, self._port = host, port
        self.connections = 0
        self.offline = False
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[object]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._online_again: asyncio.TimerHandle | None = None
        self._online = asyncio.Event()
        self._online.set()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def go_offline(self, seconds: float | None = None) -> None:
        """Drop every connection and drop new ones at once, for ``seconds`` (None: until
        `go_online`)."""
        self.offline = True
        self._online.clear()
        for writer in self._writers:
            writer.close()
        if self._online_again is not None:
            self._online_again.cancel()
        if seconds is not None:
            self._online_again = asyncio.get_running_loop().call_later(seconds, self.go_online)

    def go_online(self) -> None:
        self.offline = False
        self._online.set()

    async def wait_online(self, *, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._online.wait()

    async def drop_connections(self) -> None:
        """Close every open connection (as a gateway reboot would) and wait for it.

        Handlers end on their own once their socket closes: cancelling a
        `asyncio.start_server` handler makes Python 3.11 log a spurious error."""
        handlers = list(self._handlers)
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            if not self.offline:
                self._writers.add(writer)
                await self.bus.serve(reader, writer)
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self._port)

    async def aclose(self) -> None:
        if self._online_again is not None:
            self._online_again.cancel()
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> Dlt645GatewaySimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

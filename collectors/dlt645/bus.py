"""One RS-485 bus of DL/T 645 meters: one request in flight, a quiet gap between frames.

A `Bus` is reached through a TCP transparent server (`TcpBus`), a DTU that dialled in
(`DtuBus`) or a local serial port (`SerialBus`); `collectors.dlt645.pool` turns registry
URLs into one bus object each. Subclasses only say how to get and drop a `Link`.
"""

from __future__ import annotations

import abc
import asyncio
import math
from functools import cache, lru_cache
from typing import ClassVar, Protocol, Self

from prometheus_client import Counter, Histogram

from collectors.errors import RequestTimeoutError, TransportError
from meterhub.logs import get_logger

from .codec import Frame, FrameReader, Function, address_matches, decode
from .errors import ChecksumError, FrameError, FrameFormatError

__all__ = ["DEFAULT_GAP", "Bus", "Link"]

#: Quiet time (s) between the end of one transaction and the next request on a bus.
DEFAULT_GAP = 0.05

_log = get_logger(__name__)
_DI_WIDTH: dict[int, int] = {Function.READ: 4, Function.READ_FOLLOWUP: 4, Function.READ_1997: 2}

REQUESTS = Counter(
    "meterhub_dlt645_requests_total",
    "DL/T 645 bus transactions, by transport and outcome",
    ["transport", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "meterhub_dlt645_request_seconds",
    "Time from writing a DL/T 645 request to its reply (or failure)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
DISCARDED_FRAMES = Counter(
    "meterhub_dlt645_discarded_frames_total",
    "Frames read from a bus that were not the awaited reply, by reason",
    ["reason"],
)
STALE_BYTES = Counter(
    "meterhub_dlt645_stale_bytes_total", "Bytes drained from a bus before a request"
)


@cache  # a few label pairs, counted for every request: look each child up once
def _requests(transport: str, outcome: str) -> Counter:
    return REQUESTS.labels(transport, outcome)


class Link(Protocol):
    """An open byte pipe to the bus (a TCP socket, a DTU socket or a serial port)."""

    @property
    def is_closed(self) -> bool: ...

    def discard(self) -> int:
        """Drop every byte received so far; return how many."""
        ...

    def write(self, data: bytes) -> None: ...

    async def read(self, timeout: float) -> bytes:
        """Bytes received so far, waiting up to ``timeout`` s for some; b"" after a timeout;
        `TransportError` once the link is lost."""
        ...

    def close(self) -> None: ...


def _answers(asked: Frame, reply: Frame) -> bool:
    """True if ``reply`` is a meter's answer to ``asked``: same function, the asked (or a
    wildcard-matching) address, and for reads the same data identifier."""
    control = reply.control
    if not control.is_reply or control.function != asked.control.function:
        return False
    if not address_matches(asked.address, reply.address):
        return False
    width = _DI_WIDTH.get(asked.control.function)
    if width is None or control.is_abnormal:
        return True
    return reply.data[:width] == asked.data[:width]


@lru_cache(maxsize=1 << 17)  # the same requests every cycle: parsed once
def _request_frame(request: bytes) -> Frame:
    result = decode(request)
    if result.frame is None or result.consumed != len(request):
        raise FrameFormatError(f"request {request.hex(' ')} is not exactly one frame")
    return result.frame


class Bus(abc.ABC):
    """A DL/T 645 bus: `transact` serialises requests and keeps a quiet ``gap`` between them.

    Before each request, stale bytes (late replies, noise) are drained. Replies from other
    meters, replies to other identifiers and undecodable bytes are skipped. A transport
    failure on a link that served earlier requests is retried once on a fresh link (a
    dropped idle connection). Link failures are logged once at ERROR, then at DEBUG until
    the bus works again. Example::

        async with TcpBus("127.0.0.1", 4001) as bus:
            frame = await bus.transact(encode_read("000102030425", 0x00010000), timeout=2)
    """

    transport: ClassVar[str] = "bus"

    def __init__(self, url: str, *, gap: float = DEFAULT_GAP) -> None:
        if gap < 0:
            raise ValueError(f"gap {gap} is negative")
        self.url = url
        self.gap = gap
        self._lock = asyncio.Lock()
        self._done_at = -math.inf
        self._used: Link | None = None
        self._failing = False

    @abc.abstractmethod
    async def _get_link(self) -> Link:
        """The open link, connecting if needed; `TransportError` if there is none."""

    @abc.abstractmethod
    def _drop_link(self, link: Link) -> None:
        """Forget a link that failed (and close it)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the link; a later request reconnects."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def transact(self, request: bytes, *, timeout: float) -> Frame:
        """Write one request frame and return the meter's reply frame.

        ``timeout`` (s) counts from the moment the request is written. Raises
        `RequestTimeoutError`, `ChecksumError` (the reply arrived corrupt), or
        `TransportError` (no link). Example: ``await bus.transact(encode_read_address(),
        timeout=1.0)`` returns the 0x93 frame of the only meter on the bus.
        """
        asked = _request_frame(request)
        loop = asyncio.get_running_loop()
        async with self._lock:
            await self._quiet(loop)
            started = loop.time()
            try:
                frame = await self._exchange(request, asked, timeout, retry_stale=True)
            except TransportError as exc:
                self._count("transport", started, loop)
                self._report_failure(exc)
                raise
            except RequestTimeoutError:
                self._count("timeout", started, loop)
                raise
            except ChecksumError:
                self._count("checksum", started, loop)
                raise
            finally:
                self._done_at = loop.time()
            self._count("ok", started, loop)
            self._report_success()
            return frame

    async def send(self, request: bytes) -> None:
        """Write a frame no meter answers (broadcast time sync), keeping lock and gap."""
        _request_frame(request)
        loop = asyncio.get_running_loop()
        async with self._lock:
            await self._quiet(loop)
            try:
                link = await self._get_link()
                link.discard()
                link.write(request)
            except TransportError as exc:
                self._report_failure(exc)
                raise
            finally:
                self._done_at = loop.time()

    async def _quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        delay = self._done_at + self.gap - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _exchange(
        self, request: bytes, asked: Frame, timeout: float, *, retry_stale: bool
    ) -> Frame:
        link = await self._get_link()
        reused, self._used = link is self._used, link
        try:
            stale = link.discard()
            if stale:
                STALE_BYTES.inc(stale)
                _log.debug("dlt645.stale_bytes", bus=self.url, count=stale)
            link.write(request)
            return await self._await_reply(link, asked, timeout)
        except TransportError as exc:
            self._drop_link(link)
            if not (reused and retry_stale):
                raise
            _log.debug("dlt645.reconnect", bus=self.url, error=str(exc))
            return await self._exchange(request, asked, timeout, retry_stale=False)

    async def _await_reply(self, link: Link, asked: Frame, timeout: float) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reader = FrameReader()
        while (remaining := deadline - loop.time()) > 0:
            corrupt: ChecksumError | None = None
            for item in reader.feed(await link.read(remaining)):
                if isinstance(item, Frame):
                    if _answers(asked, item):
                        return item
                    DISCARDED_FRAMES.labels("not_the_reply").inc()
                    _log.debug("dlt645.other_frame", bus=self.url, frame=repr(item))
                elif isinstance(item, FrameError):
                    DISCARDED_FRAMES.labels("undecodable").inc()
                    _log.debug("dlt645.bad_bytes", bus=self.url, error=str(item))
                    if isinstance(item, ChecksumError):
                        corrupt = item
            if corrupt is not None:
                raise corrupt
        raise RequestTimeoutError(f"no reply from {asked.address} on {self.url} in {timeout} s")

    def _count(self, outcome: str, started: float, loop: asyncio.AbstractEventLoop) -> None:
        _requests(self.transport, outcome).inc()
        REQUEST_SECONDS.observe(loop.time() - started)

    def _report_failure(self, exc: TransportError) -> None:
        if self._failing:
            _log.debug("dlt645.bus_failed", bus=self.url, error=str(exc))
        else:
            _log.error("dlt645.bus_failed", bus=self.url, error=str(exc))
            self._failing = True

    def _report_success(self) -> None:
        if self._failing:
            _log.info("dlt645.bus_recovered", bus=self.url)
            self._failing = False

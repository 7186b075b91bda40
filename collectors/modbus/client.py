"""Modbus links: one pymodbus async client per endpoint, shared by every unit id behind it.

A `ModbusLink` serialises its requests (one in flight, as a gateway or an RS-485 bus
needs), (re)connects lazily with a backoff, and owns timeouts and retries: pymodbus's
own retries and automatic reconnection are switched off so behaviour stays explicit.
Concurrency comes from running many links at once (`collectors.modbus.pool.LinkPool`).
RTU framing has no transaction id: there a late answer is told from the next one only by
unit id, function code and register count (Modbus TCP also checks the transaction id).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from prometheus_client import Counter, Gauge
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from collectors.errors import CollectorError, RequestTimeoutError, TransportError
from collectors.modbus.endpoint import Endpoint, parse_endpoint
from collectors.modbus.register_map import Block
from meterhub.logs import get_logger

#: Modbus exception codes (Modbus application protocol v1.1b3, section 7).
EXCEPTION_NAMES: Final = {
    1: "ILLEGAL_FUNCTION",
    2: "ILLEGAL_DATA_ADDRESS",
    3: "ILLEGAL_DATA_VALUE",
    4: "SERVER_DEVICE_FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER_DEVICE_BUSY",
    8: "MEMORY_PARITY_ERROR",
    10: "GATEWAY_PATH_UNAVAILABLE",
    11: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}
REQUESTS = Counter(
    "meterhub_modbus_requests_total", "Modbus read requests, by outcome", ["outcome"]
)
CONNECTS = Counter("meterhub_modbus_connects_total", "Modbus link connect attempts", ["outcome"])
LINKS_UP = Gauge("meterhub_modbus_links_connected", "Modbus links currently connected")
_OK, _TIMEOUT, _EXCEPTION, _TRANSPORT, _BAD = (
    REQUESTS.labels(o) for o in ("ok", "timeout", "exception", "transport", "bad_response")
)
_log = get_logger(__name__)


class ModbusExceptionError(CollectorError):
    """The meter (or gateway) answered with a Modbus exception response.

    ``exception_code`` is the code (2 = illegal data address) and ``exception_name`` its name.
    """

    code = "modbus_exception"

    def __init__(self, exception_code: int, *, unit_id: int, request: str) -> None:
        self.exception_code = exception_code
        self.exception_name = EXCEPTION_NAMES.get(exception_code, f"UNKNOWN_{exception_code}")
        super().__init__(f"unit {unit_id} {request}: exception {self.exception_name}")


class GatewayNoResponseError(ModbusExceptionError, RequestTimeoutError):
    """Exception 11: the gateway got no answer from the meter, i.e. a timeout behind it."""

    code = "gateway_no_response"


class BadResponseError(CollectorError):
    """A reply that does not fit its request (function code, register count, undecodable)."""

    code = "bad_response"


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How a link behaves; times in seconds.

    A request without an answer within `timeout` (or answered with exception 11, the
    gateway's own timeout) is sent again up to `retries` times; other exception responses
    never are. A connection lost mid-request counts as one attempt. `reconnect_min` ..
    `reconnect_max` is the backoff after a failed connect: reads in between fail at once
    with `TransportError`. After `drop_after_timeouts` timeouts in a row the connection is
    reopened (a half-dead gateway). `gap` is a pause kept between requests (slow RS-485).

    Example::

        LinkOptions(timeout=0.5, retries=2, gap=0.02)
    """

    timeout: float = 1.0
    retries: int = 1
    connect_timeout: float = 3.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    drop_after_timeouts: int = 5
    gap: float = 0.0

    def __post_init__(self) -> None:
        if min(self.timeout, self.connect_timeout, self.reconnect_min) <= 0 or self.retries < 0:
            raise ValueError(f"timeouts and reconnect_min must be > 0, retries >= 0: {self}")


class ModbusLink:
    """One connection to `url` (``tcp://``, ``rtu+tcp://`` or ``serial://``), one request at a time.

    Example::

        async with ModbusLink("tcp://127.0.0.1:502") as link:
            words = await link.read(plan_blocks(model)[0], unit_id=3)
    """

    def __init__(self, url: str | Endpoint, options: LinkOptions | None = None) -> None:
        self.endpoint = url if isinstance(url, Endpoint) else parse_endpoint(url)
        self.url = url if isinstance(url, str) else url.url
        self.options = options or LinkOptions()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._up = False
        self._in_flight = False
        self._failing = False
        self._timeouts = 0
        self._lost_streak = 0
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_end = 0.0

    @property
    def connected(self) -> bool:
        return self._up

    async def read(self, block: Block, *, unit_id: int) -> list[int]:
        """The `block.count` register words of `block` from meter `unit_id` (FC03 or FC04).

        Raises `RequestTimeoutError` when the meter stays silent, `ModbusExceptionError`
        for an exception response, `TransportError` when the link cannot be used, and
        `BadResponseError` for a reply that does not fit the request.
        """
        async with self._lock:
            attempt = 0
            while True:
                try:
                    return await self._attempt(block, unit_id)
                except (RequestTimeoutError, _LostError):
                    if attempt >= self.options.retries:
                        raise
                    attempt += 1

    async def close(self) -> None:
        """Close the connection; a later `read` opens it again."""
        self._drop(ConnectionException("link closed"))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _attempt(self, block: Block, unit_id: int) -> list[int]:
        client = await self._connected_client()
        loop = asyncio.get_running_loop()
        if self.options.gap and (wait := self._last_end + self.options.gap - loop.time()) > 0:
            await asyncio.sleep(wait)
        self._in_flight = True
        try:
            request, reply = _send(client, block, unit_id)
            async with asyncio.timeout(self.options.timeout):
                response = _checked(await reply, request)
        except TimeoutError:
            _TIMEOUT.inc()
            self._timeouts += 1
            if self._timeouts >= self.options.drop_after_timeouts:
                self._drop(ConnectionException("too many timeouts in a row"))
            what = f"{self.url} unit {unit_id} {_describe(block)}"
            _log.debug("modbus timeout", request=what)
            raise RequestTimeoutError(f"{what}: no answer") from None
        except ConnectionException as exc:
            _TRANSPORT.inc()
            self._drop(exc)
            self._lost_streak += 1
            if self._lost_streak > 1:  # lost again before any answer: back off
                self._link_failed(f"connection lost: {exc}")
            raise _LostError(f"{self.url}: connection lost: {exc}") from exc
        except ModbusException as exc:
            _BAD.inc()
            raise BadResponseError(f"{self.url} unit {unit_id} {_describe(block)}: {exc}") from exc
        finally:
            self._in_flight = False
            self._last_end = loop.time()
        self._timeouts = self._lost_streak = 0
        if self._failing:
            _log.info("modbus link up", url=self.url)
            self._failing, self._backoff = False, 0.0
        if response.isError():
            _EXCEPTION.inc()
            code = getattr(response, "exception_code", 0)
            kind = GatewayNoResponseError if code == 11 else ModbusExceptionError
            raise kind(code, unit_id=unit_id, request=_describe(block))
        registers = list(response.registers)
        if response.function_code != block.function_code or len(registers) != block.count:
            _BAD.inc()
            raise BadResponseError(
                f"{self.url} unit {unit_id} {_describe(block)}: got fc{response.function_code} "
                f"with {len(registers)} registers"
            )
        _OK.inc()
        return registers

    async def _connected_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        client = self._client
        if client is not None and self._up and client.connected:
            return client
        if (wait := self._retry_at - asyncio.get_running_loop().time()) > 0:
            _TRANSPORT.inc()
            raise TransportError(f"{self.url}: link down, next connect attempt in {wait:.1f} s")
        client = self._client = client or self._new_client()
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                ok = await client.connect()
        except (TimeoutError, OSError) as exc:
            ok, reason = False, repr(exc)
        else:
            reason = "refused or unreachable"
        if not ok:
            CONNECTS.labels("failed").inc()
            _TRANSPORT.inc()
            client.close()
            self._link_failed(f"cannot connect ({reason})")
            raise TransportError(f"{self.url}: cannot connect ({reason})")
        CONNECTS.labels("ok").inc()
        self._set_up(True)
        return client

    def _link_failed(self, reason: str) -> None:
        """Back off before the next connect; log at ERROR once, then at DEBUG until it works."""
        opts = self.options
        self._backoff = min(max(self._backoff * 2, opts.reconnect_min), opts.reconnect_max)
        self._retry_at = asyncio.get_running_loop().time() + self._backoff
        log = _log.debug if self._failing else _log.error
        log("modbus link down", url=self.url, reason=reason, retry_in=self._backoff)
        self._failing = True

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        ep = self.endpoint
        # pymodbus's timeout only backs ours up; its retries and reconnect task are off.
        backstop = 2 * max(self.options.timeout, self.options.connect_timeout) + 1
        common: dict[str, Any] = dict(name=self.url, reconnect_delay=0, timeout=backstop)
        common |= dict(retries=0, trace_connect=self._on_connect)
        if ep.scheme == "serial":
            common |= dict(baudrate=ep.baudrate, bytesize=ep.bytesize, stopbits=ep.stopbits)
            return AsyncModbusSerialClient(ep.host, parity=ep.parity, **common)
        framer = FramerType.RTU if ep.rtu_framing else FramerType.SOCKET
        return AsyncModbusTcpClient(ep.host, port=ep.port, framer=framer, **common)

    def _on_connect(self, connected: bool) -> None:
        """pymodbus calls this on connect and when the peer drops the connection."""
        if not connected:
            self._fail_pending(ConnectionException("connection lost"))
            self._set_up(False)

    def _drop(self, reason: ConnectionException) -> None:
        self._fail_pending(reason)
        if self._client is not None:
            self._client.close()
        self._set_up(False)

    def _fail_pending(self, reason: ConnectionException) -> None:
        # Without this a request whose connection drops waits for its whole timeout.
        if self._in_flight and self._client is not None:
            future = self._client.ctx.response_future
            if not future.done():
                future.set_exception(reason)

    def _set_up(self, up: bool) -> None:
        if up != self._up:
            LINKS_UP.inc() if up else LINKS_UP.dec()
            self._up = up


_REQUESTS: Final = {3: ReadHoldingRegistersRequest, 4: ReadInputRegistersRequest}


def _send(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: Block, unit_id: int
) -> tuple[ModbusPDU, asyncio.Future[ModbusPDU]]:
    """Send the read of ``block``; the request, and the future its reply will complete.

    pymodbus's own ``execute`` would wrap each request in an `asyncio.wait_for` of its own
    (a second timer, a second future) under a lock this link does not need: it already sends
    one request at a time and keeps its own timeout. Here the request goes out through the
    client's transaction manager as ``execute`` sends it, and the caller awaits the reply."""
    ctx = client.ctx
    if not ctx.transport:
        raise ConnectionException(f"{client.comm_params.comm_name}: not connected")
    request = _REQUESTS[block.function_code](
        address=block.address, count=block.count, dev_id=unit_id
    )
    request.transaction_id = ctx.getNextTID()
    ctx.recv_buffer = b""
    future: asyncio.Future[ModbusPDU] = asyncio.get_running_loop().create_future()
    ctx.response_future = future
    ctx.pdu_send(request)
    return request, future


def _checked(response: ModbusPDU, request: ModbusPDU) -> ModbusPDU:
    """The reply, if it is from the unit asked and (Modbus TCP) to this transaction, as
    pymodbus's ``execute`` checks."""
    if request.dev_id and response.dev_id != request.dev_id:
        raise ModbusIOException(f"request to unit {request.dev_id}, reply from {response.dev_id}")
    if response.transaction_id and response.transaction_id != request.transaction_id:
        raise ModbusIOException(
            f"request {request.transaction_id}, reply to transaction {response.transaction_id}"
        )
    return response


class _LostError(TransportError):
    """The connection went away during a request: worth one more attempt."""


def _describe(block: Block) -> str:
    return f"fc{block.function_code} {block.address:#06x}+{block.count}"

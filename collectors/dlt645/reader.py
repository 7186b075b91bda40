"""Read one DL/T 645 meter over a `Bus`: registers mapped to `Reading` fields, and its clock.

Identifiers are always named by their 2007 DI (the table's key); with ``version=1997``
the reader sends the matching 1997 DI. A meter that answers an identifier with an error
reply (NO_DATA for an unsupported DI) loses that field only; one that stays silent or
keeps sending corrupt frames after the retries fails the whole read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter

from collectors.errors import RequestTimeoutError
from meterhub.logs import get_logger
from meterhub.reading import LOCAL_TZ, Quality, Reading

from .bus import Bus
from .codec import Frame
from .commands import (
    encode_read,
    encode_read_address,
    encode_read_followup,
    parse_address_reply,
    parse_read_reply,
)
from .errors import (
    ChecksumError,
    Dlt645Error,
    IdentifierMismatchError,
    MeterErrorReply,
    ReplyMismatchError,
    UnknownIdentifierError,
    ValueFormatError,
)
from .identifiers import Version, lookup
from .values import MeterDate, Value, decode_value

__all__ = [
    "DATE_DI",
    "DEFAULT_SET",
    "TIME_DI",
    "MeterValues",
    "Query",
    "read_address",
    "read_meter",
]

DATE_DI, TIME_DI = 0x04000101, 0x04000102
_MAX_FOLLOWUPS = 16
_RETRYABLE = (RequestTimeoutError, ChecksumError, ReplyMismatchError)
_log = get_logger(__name__)
_T = TypeVar("_T")

RETRIES = Counter("meterhub_dlt645_retries_total", "DL/T 645 requests sent again")
MISSING = Counter(
    "meterhub_dlt645_missing_values_total",
    "Identifiers a meter refused (error reply) or answered with an undecodable value",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class Query:
    """Read ``di``; if the meter refuses it (error reply), read the ``fallback`` DIs instead.

    Example: ``Query(0x0201FF00, fallback=(0x02010100, 0x02010200, 0x02010300))``.
    """

    di: int
    fallback: tuple[int, ...] = ()


#: Energy block (total + 4 tariffs), voltage and current blocks, each falling back to
#: single identifiers; total active power; power factor; the meter's date and time.
DEFAULT_SET: tuple[Query, ...] = (
    Query(0x0001FF00, (0x00010000, 0x00010100, 0x00010200, 0x00010300, 0x00010400)),
    Query(0x0201FF00, (0x02010100, 0x02010200, 0x02010300)),
    Query(0x0202FF00, (0x02020100, 0x02020200, 0x02020300)),
    Query(0x02030000),
    Query(0x02060000),
    Query(DATE_DI),
    Query(TIME_DI),
)


@dataclass(frozen=True, slots=True)
class MeterValues:
    """What one read returned. ``fields`` uses `Reading` field names (kWh, V, A, kW);
    ``clock`` is the meter's own time in Asia/Shanghai; ``raw`` holds every decoded value
    by 2007 DI; ``missing`` the DIs the meter refused or sent garbage for, with the error."""

    address: str
    fields: Mapping[str, float]
    clock: dt.datetime | None
    raw: Mapping[int, Value]
    missing: Mapping[int, Dlt645Error]

    def to_reading(
        self,
        meter_id: int,
        *,
        ts: dt.datetime,
        quality: int = Quality.GOOD,
        source: str = "dlt645",
    ) -> Reading:
        """A `Reading` of these fields stamped ``ts`` (normally ``clock``, or the poll time
        with `Quality.CLOCK_DRIFT` when the scheduler distrusts the meter's clock)."""
        return Reading(meter_id=meter_id, ts=ts, quality=quality, source=source, **self.fields)


async def _with_retries(
    call: Callable[[], Awaitable[_T]], *, retries: int, backoff: float, what: str
) -> _T:
    attempt = 0
    while True:
        try:
            return await call()
        except _RETRYABLE as exc:
            if attempt >= retries:
                raise
            RETRIES.inc()
            _log.debug("dlt645.retry", what=what, attempt=attempt + 1, error=str(exc))
            await asyncio.sleep(backoff * 2**attempt)
            attempt += 1


@dataclass(frozen=True, slots=True)
class _Session:
    bus: Bus
    address: str
    timeout: float
    retries: int
    backoff: float
    version: Version

    async def read(self, di: int) -> Value:
        """One identifier's value, with retries; error replies and bad values raise."""
        wire = di if self.version == 2007 else lookup(di).di_1997
        if wire is None:
            raise UnknownIdentifierError(f"{di:08X} has no DL/T 645-1997 identifier")
        return await _with_retries(
            lambda: self._read_once(wire),
            retries=self.retries,
            backoff=self.backoff,
            what=f"{self.address}/{wire:X}",
        )

    async def _read_once(self, wire: int) -> Value:
        request = encode_read(self.address, wire, version=self.version)
        frame = await self.bus.transact(request, timeout=self.timeout)
        if self.version == 1997 or not frame.control.has_more or frame.control.is_abnormal:
            return parse_read_reply(frame, expected_address=self.address, expected_di=wire).value
        parts = [_part(frame, wire, seq=None)]
        for seq in range(1, _MAX_FOLLOWUPS + 1):
            request = encode_read_followup(self.address, wire, seq=seq)
            frame = await self.bus.transact(request, timeout=self.timeout)
            if frame.control.is_abnormal:
                parse_read_reply(frame, expected_address=self.address, expected_di=wire)
            parts.append(_part(frame, wire, seq=seq))
            if not frame.control.has_more:
                return decode_value(wire, b"".join(parts))
        raise ReplyMismatchError(f"{self.address} sent over {_MAX_FOLLOWUPS} follow-up frames")

    async def read_into(
        self, di: int, raw: dict[int, Value], missing: dict[int, Dlt645Error]
    ) -> bool:
        """Read ``di`` into ``raw``, or note a refusal or bad value in ``missing``; True if
        the meter refused ``di`` (error reply), so that a fallback may help."""
        try:
            raw[di] = await self.read(di)
        except (MeterErrorReply, ValueFormatError, UnknownIdentifierError) as exc:
            MISSING.labels("error_reply" if isinstance(exc, MeterErrorReply) else "bad_value").inc()
            _log.debug("dlt645.value_missing", meter=self.address, di=f"{di:08X}", error=str(exc))
            missing[di] = exc
            return isinstance(exc, MeterErrorReply)
        return False


def _part(frame: Frame, wire: int, *, seq: int | None) -> bytes:
    """The value bytes of one frame of a multi-frame reply."""
    data = frame.data
    if data[:4] != wire.to_bytes(4, "little"):
        raise IdentifierMismatchError(f"follow-up frame for DI {data[:4][::-1].hex()}")
    if seq is None:
        return data[4:]
    if len(data) < 5 or data[-1] != seq:
        raise ReplyMismatchError(f"follow-up frame out of sequence, expected {seq}")
    return data[4:-1]


async def _read_clock(
    session: _Session, raw: dict[int, Value], missing: dict[int, Dlt645Error]
) -> dt.datetime | None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await session.read_into(DATE_DI, raw, missing)
    await session.read_into(TIME_DI, raw, missing)
    date, time = raw.get(DATE_DI), raw.get(TIME_DI)
    if not isinstance(date, MeterDate) or not isinstance(time, dt.time):
        return None
    since_midnight = time.hour * 3600 + time.minute * 60 + time.second
    if since_midnight <= loop.time() - started + 1.0:  # midnight may fall between the reads
        await session.read_into(DATE_DI, raw, missing)
        date = raw.get(DATE_DI)
        if not isinstance(date, MeterDate):
            return None
    return dt.datetime.combine(date.date, time, tzinfo=LOCAL_TZ)


def _fields(raw: Mapping[int, Value]) -> dict[str, float]:
    fields: dict[str, float] = {}
    for di, value in raw.items():
        names = lookup(di).fields
        if not names:
            continue
        values = value if isinstance(value, tuple) else (value,)
        for name, number in zip(names, values, strict=True):
            if isinstance(number, int | float):
                fields[name] = float(number)
    return fields


async def read_meter(
    bus: Bus,
    address: str,
    *,
    identifiers: Iterable[Query | int] = DEFAULT_SET,
    timeout: float = 2.0,
    retries: int = 2,
    backoff: float = 0.2,
    version: Version = 2007,
) -> MeterValues:
    """Read ``identifiers`` (2007 DIs) from the meter at ``address`` (12 digits).

    Each request waits ``timeout`` s; timeouts and corrupt replies are retried ``retries``
    times after ``backoff`` x 1, 2, 4 ... s, then raise `RequestTimeoutError` /
    `ChecksumError`. `TransportError` (no link to the bus) is raised at once. Example::

        values = await read_meter(bus, "000102030425", timeout=2.0)
        values.fields["energy"], values.clock  # 1206.42, datetime(..., tzinfo=Asia/Shanghai)
    """
    session = _Session(bus, address, timeout, retries, backoff, version)
    queries = [item if isinstance(item, Query) else Query(item) for item in identifiers]
    with_clock = {DATE_DI, TIME_DI} <= {query.di for query in queries}
    raw: dict[int, Value] = {}
    missing: dict[int, Dlt645Error] = {}
    for query in queries:
        if with_clock and query.di in (DATE_DI, TIME_DI):
            continue
        if await session.read_into(query.di, raw, missing):
            for di in query.fallback:
                await session.read_into(di, raw, missing)
    clock = await _read_clock(session, raw, missing) if with_clock else None
    return MeterValues(address, _fields(raw), clock, raw, missing)


async def read_address(
    bus: Bus, *, timeout: float = 2.0, retries: int = 2, backoff: float = 0.2
) -> str:
    """The address of the only meter on ``bus`` (command 0x13 to the wildcard address), for
    commissioning. With several meters their replies collide: expect `ChecksumError` or
    `RequestTimeoutError`. Example: ``await read_address(bus)`` -> ``"000102030425"``.
    """

    async def once() -> str:
        return parse_address_reply(await bus.transact(encode_read_address(), timeout=timeout))

    return await _with_retries(once, retries=retries, backoff=backoff, what="read address")

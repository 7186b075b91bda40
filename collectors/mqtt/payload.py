"""The v1 gateway payload: JSON bytes -> `Reading`s plus one `QuarantineRecord` per problem.

Pure: no I/O. The schema is documented in ``docs/mqtt.md``::

    {"v": 1, "gateway": "gw-0001", "sent_at": "2026-03-01T08:15:02+08:00",
     "readings": [{"channel": 3, "ts": "2026-03-01T08:15:00+08:00", "energy": 1206.42}]}

A problem with the message as a whole (not JSON, not an object, another version, another
gateway) quarantines the whole message with its raw bytes; a problem with one element of
``readings`` quarantines that element only and the others still pass.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import orjson

from ingest.quarantine import QuarantineRecord, Reason, pg_text
from meterhub.reading import VALUE_FIELDS, Reading

#: The payload version this module reads and writes.
VERSION = 1
#: Raw payloads longer than this are cut short in quarantine records.
MAX_QUARANTINED_BYTES = 1 << 20
#: Meter timestamps outside [MIN_YEAR, MAX_YEAR) are refused before they reach the database.
MIN_YEAR, MAX_YEAR = 1970, 2200

_VALUE_NAMES = frozenset(VALUE_FIELDS)

#: ``(channel, meter timestamp) -> meter id``, or None for a channel without a meter.
Resolve = Callable[[int, datetime], int | None]


@dataclass(slots=True)
class ParsedPayload:
    """What one message holds: good readings, and a quarantine record per problem.

    ``elements`` counts the entries of ``readings`` (0 when the whole message is rejected);
    ``rejected_whole`` is true when the message as a whole was quarantined.
    """

    readings: list[Reading] = field(default_factory=list)
    rejects: list[QuarantineRecord] = field(default_factory=list)
    elements: int = 0
    rejected_whole: bool = False


class _Refused(Exception):  # noqa: N818 -- internal control flow, never escapes
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def source_of(gateway_id: str) -> str:
    """The ``source`` of readings that came from ``gateway_id`` over MQTT."""
    return f"mqtt:{gateway_id}"


def parse_payload(payload: bytes, *, gateway_id: str, resolve: Resolve) -> ParsedPayload:
    """Parse one message published by ``gateway_id`` (taken from the topic); never raises.

    Example::

        channels = {3: 17}
        parsed = parse_payload(body, gateway_id="gw-0001", resolve=lambda ch, ts: channels.get(ch))
        await sink.submit(parsed.readings, rejects=parsed.rejects)
    """
    source = source_of(gateway_id)
    fast = _plain_readings(payload, gateway_id, source, resolve)
    if fast is not None:
        return fast
    try:
        elements = _envelope(payload, gateway_id)
    except _Refused as refused:
        record = QuarantineRecord(
            source, refused.reason, pg_text(refused.detail), raw_text(payload)
        )
        return ParsedPayload(rejects=[record], rejected_whole=True)
    parsed = ParsedPayload(elements=len(elements))
    readings, rejects = parsed.readings, parsed.rejects
    stamps: dict[str, datetime] = {}  # a message's elements mostly share one timestamp
    for index, element in enumerate(elements):
        item = _element(element, index=index, source=source, resolve=resolve, stamps=stamps)
        if isinstance(item, Reading):
            readings.append(item)
        else:
            rejects.append(item)
    return parsed


def _envelope(payload: bytes, gateway_id: str) -> list[object]:
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Refused(Reason.MALFORMED_PAYLOAD, f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise _Refused(Reason.WRONG_TYPE, f"payload is {_kind(message)}, expected an object")
    version = message.get("v")
    if version is None:
        raise _Refused(Reason.MISSING_FIELD, "payload has no 'v' (payload version)")
    if type(version) is not int or version != VERSION:
        raise _Refused(
            Reason.MALFORMED_PAYLOAD, f"unsupported payload version {version!r}; expected 1"
        )
    claimed = message.get("gateway")
    if claimed is None:
        raise _Refused(Reason.MISSING_FIELD, "payload has no 'gateway'")
    if not isinstance(claimed, str):
        raise _Refused(Reason.WRONG_TYPE, f"'gateway' is {_kind(claimed)}, expected a string")
    if claimed != gateway_id:
        raise _Refused(
            Reason.MALFORMED_PAYLOAD,
            f"payload gateway {claimed!r} is not the topic's gateway {gateway_id!r}",
        )
    sent_at = message.get("sent_at")
    if sent_at is not None:
        _timestamp(sent_at, "'sent_at'")
    elements = message.get("readings")
    if elements is None:
        raise _Refused(Reason.MISSING_FIELD, "payload has no 'readings'")
    if not isinstance(elements, list):
        raise _Refused(Reason.WRONG_TYPE, f"'readings' is {_kind(elements)}, expected a list")
    return elements


#: An element as the fast path decodes it (unknown fields are ignored).
_PlainElement = msgspec.defstruct(
    "_PlainElement",
    [
        ("channel", int),
        ("ts", datetime),
        *[(name, float | None, None) for name in VALUE_FIELDS],
        ("quality", int, 0),
    ],
)


class _PlainMessage(msgspec.Struct):
    v: int
    gateway: str
    readings: list[_PlainElement]  # type: ignore[valid-type]  # a struct built at import
    sent_at: datetime | None = None


_DECODE_PLAIN = msgspec.json.Decoder(_PlainMessage).decode
_HEAD_OF = operator.attrgetter("channel", "ts", "quality")
_VALUES_OF = operator.attrgetter(*VALUE_FIELDS)
_NO_VALUES = (None,) * len(VALUE_FIELDS)


def _plain_readings(
    payload: bytes, gateway_id: str, source: str, resolve: Resolve
) -> ParsedPayload | None:
    """The fast path: a message whose every part is plainly good (typed by msgspec in one
    C pass: numbers are numbers, timestamps are RFC 3339), else None and the careful path
    (`_envelope`, `_element`) finds and names each problem."""
    try:
        message = _DECODE_PLAIN(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if message.v != VERSION or message.gateway != gateway_id or not _good_time(message.sent_at):
        return None
    readings: list[Reading] = []
    make = Reading._make
    for element in message.readings:
        channel, ts, quality = _HEAD_OF(element)
        values = _VALUES_OF(element)
        meter_id = resolve(channel, ts) if _good_time(ts) else None
        if meter_id is None or values == _NO_VALUES:
            return None
        readings.append(make((meter_id, ts, *values, quality, source)))
    return ParsedPayload(readings=readings, elements=len(readings))


def _good_time(ts: datetime | None) -> bool:
    return ts is None or (ts.tzinfo is not None and MIN_YEAR <= ts.year < MAX_YEAR)


def _element(
    element: object, *, index: int, source: str, resolve: Resolve, stamps: dict[str, datetime]
) -> Reading | QuarantineRecord:
    """One reading element; ``stamps`` caches the message's parsed ``ts`` strings."""
    ts: datetime | None = None
    meter_id: int | None = None
    try:
        if not isinstance(element, dict):
            where = _where(index)
            raise _Refused(Reason.WRONG_TYPE, f"{where} is {_kind(element)}, expected an object")
        channel = _required(element, "channel", index)
        if type(channel) is not int:
            where = _where(index)
            raise _Refused(
                Reason.WRONG_TYPE, f"{where}.channel is {_kind(channel)}, expected an integer"
            )
        ts = _element_ts(_required(element, "ts", index), index, stamps)
        meter_id = resolve(channel, ts)
        values = _values(element, index)
        if not values:
            raise _Refused(
                Reason.MISSING_FIELD, f"{_where(index)} has no value ({', '.join(VALUE_FIELDS)})"
            )
        quality = element.get("quality", 0)
        if type(quality) is not int:
            where = _where(index)
            raise _Refused(
                Reason.WRONG_TYPE, f"{where}.quality is {_kind(quality)}, expected an integer"
            )
        if meter_id is None:
            raise _Refused(Reason.UNKNOWN_METER, f"{_where(index)}: no meter on channel {channel}")
    except _Refused as refused:
        text = _element_text(element)
        detail = pg_text(refused.detail)
        return QuarantineRecord(source, refused.reason, detail, text, meter_id=meter_id, ts=ts)
    return Reading(meter_id=meter_id, ts=ts, quality=quality, source=source, **values)


def _where(index: int) -> str:
    return f"readings[{index}]"


def _required(element: dict[str, object], name: str, index: int) -> object:
    value = element.get(name)
    if value is None:
        raise _Refused(Reason.MISSING_FIELD, f"{_where(index)} has no {name!r}")
    return value


def _element_ts(value: object, index: int, stamps: dict[str, datetime]) -> datetime:
    if type(value) is str:
        ts = stamps.get(value)
        if ts is None:
            ts = stamps[value] = _timestamp(value, f"{_where(index)}.ts")
        return ts
    return _timestamp(value, f"{_where(index)}.ts")


def _timestamp(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise _Refused(Reason.WRONG_TYPE, f"{where} is {_kind(value)}, expected an ISO 8601 string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise _Refused(
            Reason.MALFORMED_PAYLOAD, f"{where} {value[:64]!r} is not an ISO 8601 timestamp"
        ) from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise _Refused(Reason.NAIVE_TIMESTAMP, f"{where} {value!r} has no UTC offset")
    if not MIN_YEAR <= ts.year < MAX_YEAR:
        raise _Refused(Reason.OUT_OF_RANGE, f"{where} {value!r} is outside {MIN_YEAR}-{MAX_YEAR}")
    return ts


def _values(element: dict[str, object], index: int) -> dict[str, float]:
    """The value fields present (null counts as absent), each a number."""
    values: dict[str, float] = {}
    for name, value in element.items():
        if name not in _VALUE_NAMES:
            continue
        if type(value) is float:
            values[name] = value
        elif type(value) is int:
            values[name] = float(value)
        elif value is not None:
            where = f"{_where(index)}.{name}"
            raise _Refused(Reason.WRONG_TYPE, f"{where} is {_kind(value)}, expected a number")
    return values


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def raw_text(payload: bytes) -> str:
    """A raw payload as quarantine text: undecodable bytes escaped, at most 1 MiB kept."""
    text = pg_text(payload[:MAX_QUARANTINED_BYTES].decode("utf-8", "backslashreplace"))
    if len(payload) > MAX_QUARANTINED_BYTES:
        text += f"... [truncated: {len(payload)} bytes in all]"
    return text


def _element_text(element: object) -> str:
    try:
        return pg_text(orjson.dumps(element).decode())
    except (orjson.JSONEncodeError, RecursionError):
        return f"<{_kind(element)} nested too deeply to re-encode>"


def encode_payload(
    gateway_id: str, readings: Iterable[Mapping[str, object]], *, sent_at: datetime
) -> bytes:
    """A v1 message from reading elements (``channel``, ``ts`` as an aware datetime or an
    ISO 8601 string, value fields, optional ``quality``); for simulators and tests.

    Example::

        encode_payload("gw-0001", [{"channel": 3, "ts": ts, "energy": 1206.42}], sent_at=now)
    """
    message = {"v": VERSION, "gateway": gateway_id, "sent_at": sent_at, "readings": list(readings)}
    return orjson.dumps(message)

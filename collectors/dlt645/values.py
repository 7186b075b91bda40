"""BCD value codecs driven by the identifier table: reply bytes <-> Python values.

Bytes here are the *unscrambled* value part of a data field (0x33 already removed),
least significant byte first, as DL/T 645 sends every multi-byte field.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from .errors import BcdError, ValueFormatError
from .identifiers import BcdFormat, Identifier, Kind, Version, lookup

__all__ = ["MeterDate", "Value", "bcd_to_int", "decode_value", "encode_value", "int_to_bcd"]


@dataclass(frozen=True, slots=True)
class MeterDate:
    """The meter's date and the weekday it keeps itself (0 = Sunday ... 6 = Saturday)."""

    date: dt.date
    weekday: int


#: What `decode_value` returns: float (scaled), int (ratios), a tuple of floats for a
#: block, `MeterDate` for 04000101 and `datetime.time` for 04000102.
Value = float | int | tuple[float, ...] | MeterDate | dt.time


def bcd_to_int(data: bytes) -> int:
    """Little-endian packed BCD to int; `BcdError` on a nibble above 9.

    Example::

        >>> bcd_to_int(bytes([0x42, 0x06, 0x12, 0x00]))
        120642
    """
    number = 0
    for byte in reversed(data):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise BcdError(f"invalid BCD byte 0x{byte:02X} in {data.hex(' ').upper()}")
        number = number * 100 + high * 10 + low
    return number


def int_to_bcd(number: int, size: int) -> bytes:
    """Non-negative int to ``size`` bytes of little-endian packed BCD.

    Example::

        >>> int_to_bcd(120642, 4).hex(" ")
        '42 06 12 00'
    """
    if not 0 <= number < 100**size:
        raise ValueFormatError(f"{number} does not fit in {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        number, pair = divmod(number, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)


def _decode_number(fmt: BcdFormat, data: bytes) -> float:
    negative = fmt.signed and bool(data[-1] & 0x80)
    if fmt.signed:
        data = data[:-1] + bytes([data[-1] & 0x7F])
    scale: int = 10**fmt.decimals
    magnitude = bcd_to_int(data) / scale
    return -magnitude if negative else magnitude


def _encode_number(fmt: BcdFormat, value: object) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueFormatError(f"expected a number, got {value!r}")
    scale: int = 10**fmt.decimals
    negative = math.copysign(1.0, value) < 0
    if not math.isfinite(value) or abs(value) > fmt.max_scaled / scale + 1:
        raise ValueFormatError(f"{value!r} is out of range for {fmt}")
    if negative and not fmt.signed and value != 0:
        raise ValueFormatError(f"{value!r} is negative but {fmt} has no sign bit")
    scaled = round(abs(value) * scale)
    if scaled > fmt.max_scaled:
        raise ValueFormatError(f"{value!r} is out of range for {fmt}")
    data = bytearray(int_to_bcd(scaled, fmt.size))
    if negative and fmt.signed:
        data[-1] |= 0x80
    return bytes(data)


def _decode_one(row: Identifier, fmt: BcdFormat, data: bytes) -> Value:
    if row.kind is Kind.NUMBER:
        return _decode_number(fmt, data)
    if row.kind is Kind.INTEGER:
        return bcd_to_int(data)
    fields = [bcd_to_int(data[i : i + 1]) for i in range(len(data))]
    try:
        if row.kind is Kind.DATE:
            weekday, day, month, year = fields
            if weekday > 6:
                raise ValueError(f"weekday {weekday} is not 0..6")
            return MeterDate(dt.date(2000 + year, month, day), weekday)
        second, minute, hour = fields
        return dt.time(hour, minute, second)
    except ValueError as exc:
        raise ValueFormatError(f"{row.name}: {exc}") from None


def _encode_one(row: Identifier, fmt: BcdFormat, value: object) -> bytes:
    if row.kind is Kind.NUMBER:
        return _encode_number(fmt, value)
    if row.kind is Kind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueFormatError(f"{row.name}: expected an int, got {value!r}")
        return int_to_bcd(value, fmt.size)
    if row.kind is Kind.DATE:
        if not isinstance(value, MeterDate) or not 2000 <= value.date.year <= 2099:
            raise ValueFormatError(f"{row.name}: expected a MeterDate in 2000-2099: {value!r}")
        if not 0 <= value.weekday <= 6:
            raise ValueFormatError(f"{row.name}: weekday {value.weekday} is not 0..6")
        day = value.date
        return bytes(
            int_to_bcd(n, 1)[0] for n in (value.weekday, day.day, day.month, day.year % 100)
        )
    if not isinstance(value, dt.time):
        raise ValueFormatError(f"{row.name}: expected a datetime.time, got {value!r}")
    return bytes(int_to_bcd(n, 1)[0] for n in (value.second, value.minute, value.hour))


def decode_value(di: int, data: bytes, *, version: Version = 2007) -> Value:
    """Decode the value bytes of a reply for ``di`` using the identifier table.

    Raises `UnknownIdentifierError`, `BcdError`, or `ValueFormatError` (wrong length, bad
    date). Example::

        >>> decode_value(0x00010000, bytes([0x42, 0x06, 0x12, 0x00]))
        1206.42
    """
    row = lookup(di, version=version)
    fmt = row.format_for(version)
    if len(data) != row.size(version):
        raise ValueFormatError(f"{row.name}: {len(data)} bytes, expected {row.size(version)}")
    if row.count > 1:
        return tuple(
            _decode_number(fmt, data[i : i + fmt.size]) for i in range(0, len(data), fmt.size)
        )
    return _decode_one(row, fmt, data)


def encode_value(di: int, value: Value, *, version: Version = 2007) -> bytes:
    """The inverse of `decode_value`, for simulators: a value to its reply bytes.

    Floats are rounded to the format's decimals; out-of-range values raise
    `ValueFormatError`. Example::

        >>> encode_value(0x02010100, 220.1).hex(" ")
        '01 22'
    """
    row = lookup(di, version=version)
    fmt = row.format_for(version)
    if row.count > 1:
        if not isinstance(value, tuple | list) or len(value) != row.count:
            raise ValueFormatError(f"{row.name}: expected {row.count} numbers, got {value!r}")
        return b"".join(_encode_number(fmt, element) for element in value)
    return _encode_one(row, fmt, value)

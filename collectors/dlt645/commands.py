"""Request and reply frames of the DL/T 645 read exchange, as bytes in and values out.

Collectors use `encode_read` and `parse_read_reply`; simulators use the ``encode_*_reply``
side. Multi-frame values (has_more / follow-up reads) are not reassembled here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from .codec import (
    BROADCAST,
    WILDCARD,
    Control,
    Frame,
    Function,
    address_matches,
    decode_address,
    encode_address,
    encode_frame,
)
from .errors import (
    AddressError,
    AddressMismatchError,
    IdentifierMismatchError,
    MeterErrorReply,
    MeterErrorWord,
    ReplyMismatchError,
    ValueFormatError,
)
from .identifiers import Version
from .values import Value, decode_value, int_to_bcd

__all__ = [
    "ReadReply",
    "encode_address_reply",
    "encode_broadcast_time",
    "encode_error_reply",
    "encode_read",
    "encode_read_address",
    "encode_read_followup",
    "encode_reply",
    "parse_address_reply",
    "parse_read_reply",
]

_READ_FUNCTION: dict[int, Function] = {2007: Function.READ, 1997: Function.READ_1997}
_VERSION_OF: dict[int, Version] = {
    Function.READ: 2007,
    Function.READ_FOLLOWUP: 2007,
    Function.READ_1997: 1997,
}


@dataclass(frozen=True, slots=True)
class ReadReply:
    """A decoded read reply: the DI, its value, whether more frames follow, the follow-up seq."""

    di: int
    value: Value
    more: bool = False
    seq: int | None = None


def _read_function(version: Version) -> Function:
    function = _READ_FUNCTION.get(version)
    if function is None:
        raise ValueFormatError(f"unknown DL/T 645 edition {version!r}")
    return function


def _di_bytes(di: int, version: Version) -> bytes:
    _read_function(version)
    width = 4 if version == 2007 else 2
    if not 0 <= di < 1 << (8 * width):
        raise ValueFormatError(f"0x{di:X} is no DL/T 645-{version} data identifier")
    return di.to_bytes(width, "little")


def encode_read(address: str, di: int, *, version: Version = 2007) -> bytes:
    """A read request (2007: control 0x11 and a 4-byte DI; 1997: 0x01 and 2 bytes).

    Example::

        >>> encode_read("000102030425", 0x00010000).hex(" ")
        'fe fe fe fe 68 25 04 03 02 01 00 68 11 04 33 33 34 33 e1 16'
    """
    return _encode_read(address, di, version)


@lru_cache(maxsize=1 << 17)  # the same requests every cycle: built once
def _encode_read(address: str, di: int, version: Version) -> bytes:
    data = _di_bytes(di, version)
    return encode_frame(Frame(address, Control(_read_function(version)), data))


def encode_read_followup(address: str, di: int, *, seq: int) -> bytes:
    """A 2007 read-follow-up request (0x12) for frame ``seq`` of a multi-frame reply.

    Example: ``encode_read_followup("000102030425", 0x0001FF00, seq=1)``.
    """
    if not 0 <= seq <= 0xFF:
        raise ValueFormatError(f"sequence number {seq} is not 0..255")
    data = _di_bytes(di, 2007) + bytes((seq,))
    return encode_frame(Frame(address, Control(Function.READ_FOLLOWUP), data))


def encode_read_address() -> bytes:
    """Ask the only meter on the bus for its address (0x13 to the wildcard address).

    Example: ``encode_read_address()[4:12].hex(" ")`` is ``'68 aa aa aa aa aa aa 68'``.
    """
    return encode_frame(Frame(WILDCARD, Control(Function.READ_ADDRESS)))


def encode_broadcast_time(when: dt.datetime) -> bytes:
    """Broadcast time sync (0x08) with the wall-clock fields of ``when`` (meter local time).

    Data is ss mm hh DD MM YY. Example:
    ``encode_broadcast_time(datetime(2026, 3, 1, 8, 15, 0))``.
    """
    if not 2000 <= when.year <= 2099:
        raise ValueFormatError(f"year {when.year} is not 2000..2099")
    fields = (when.second, when.minute, when.hour, when.day, when.month, when.year % 100)
    data = b"".join(int_to_bcd(field, 1) for field in fields)
    return encode_frame(Frame(BROADCAST, Control(Function.BROADCAST_TIME), data))


def encode_reply(
    address: str,
    di: int,
    value_bytes: bytes,
    *,
    more: bool = False,
    version: Version = 2007,
    seq: int | None = None,
) -> bytes:
    """A meter's normal read reply (0x91, 0xB1 with ``more``; 1997: 0x81); with ``seq`` a
    follow-up reply (0x92) carrying that sequence byte.

    Example::

        >>> value = encode_value(0x00010000, 1206.42)
        >>> encode_reply("000102030425", 0x00010000, value).hex(" ")
        'fe fe fe fe 68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8b 16'
    """
    function = _read_function(version)
    data = _di_bytes(di, version) + value_bytes
    if seq is not None:
        if version != 2007 or not 0 <= seq <= 0xFF:
            raise ValueFormatError(f"sequence number {seq} needs version 2007 and 0..255")
        function, data = Function.READ_FOLLOWUP, data + bytes((seq,))
    return encode_frame(Frame(address, Control(function, is_reply=True, has_more=more), data))


def encode_error_reply(
    address: str, error_word: MeterErrorWord | int, *, version: Version = 2007
) -> bytes:
    """A meter's abnormal read reply (2007: 0xD1, 1997: 0xC1) with one error-word byte.

    Example: ``encode_error_reply("000102030425", MeterErrorWord.NO_DATA)`` ends in
    ``68 d1 01 35 ..``.
    """
    if not 0 <= error_word <= 0xFF:
        raise ValueFormatError(f"error word {error_word} is not one byte")
    control = Control(_read_function(version), is_reply=True, is_abnormal=True)
    return encode_frame(Frame(address, control, bytes((int(error_word),))))


def encode_address_reply(address: str) -> bytes:
    """A meter's answer to `encode_read_address` (0x93 with its address as data)."""
    data = encode_address(address)
    return encode_frame(Frame(address, Control(Function.READ_ADDRESS, is_reply=True), data))


def parse_read_reply(frame: Frame, *, expected_address: str, expected_di: int) -> ReadReply:
    """Check a reply against its request and decode the value.

    The edition (2007 or 1997) follows from the frame's function code. Raises
    `MeterErrorReply` for an abnormal reply, `AddressMismatchError` /
    `IdentifierMismatchError` / `ReplyMismatchError` for a reply to something else, and
    the value errors of `decode_value`. Example::

        >>> reply = parse_read_reply(frame, expected_address="000102030425",
        ...                          expected_di=0x00010000)
        >>> reply.value
        1206.42
    """
    version = _VERSION_OF.get(frame.control.function)
    if not frame.control.is_reply or version is None:
        raise ReplyMismatchError(f"frame with control 0x{frame.control.byte:02X} is no read reply")
    if not address_matches(decode_address(encode_address(expected_address)), frame.address):
        raise AddressMismatchError(f"reply from {frame.address}, expected {expected_address}")
    if frame.control.is_abnormal:
        word = frame.data[0] if frame.data else 0
        raise MeterErrorReply(MeterErrorWord(word), address=frame.address)
    width = 4 if version == 2007 else 2
    if len(frame.data) < width:
        raise ValueFormatError(f"reply data {frame.data.hex(' ')} is shorter than a DI")
    di = int.from_bytes(frame.data[:width], "little")
    if di != expected_di:
        raise IdentifierMismatchError(f"reply for DI {di:0{2 * width}X}, expected {expected_di:X}")
    value_bytes, seq = frame.data[width:], None
    if frame.control.function == Function.READ_FOLLOWUP and value_bytes:
        value_bytes, seq = value_bytes[:-1], value_bytes[-1]
    value = decode_value(di, value_bytes, version=version)
    return ReadReply(di, value, more=frame.control.has_more, seq=seq)


def parse_address_reply(frame: Frame) -> str:
    """The address a meter reports in its reply to `encode_read_address`."""
    control = frame.control
    if not control.is_reply or control.is_abnormal or control.function != Function.READ_ADDRESS:
        raise ReplyMismatchError(f"frame with control 0x{control.byte:02X} is no address reply")
    address = decode_address(frame.data)
    if "A" in address:
        raise AddressError(f"meter reported the wildcard address {address}")
    return address

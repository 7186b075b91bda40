"""DL/T 645 frames as a pure codec: `Frame` <-> bytes, with no I/O.

Wire format: optional ``FE`` wake-up bytes, then ``68 A0..A5 68 C L DATA CS 16``; DATA
travels +0x33 per byte, CS is the sum of the bytes from the first 68 through the last DATA
byte. `decode` takes whatever bytes have arrived and says what they hold; `FrameReader`
keeps the leftovers between reads.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import AddressError, ChecksumError, FrameError, FrameFormatError, ValueFormatError
from .values import bcd_to_int, int_to_bcd

__all__ = [
    "BROADCAST",
    "MAX_DATA_LEN",
    "WILDCARD",
    "Control",
    "DecodeResult",
    "Frame",
    "FrameReader",
    "Function",
    "address_matches",
    "decode",
    "decode_address",
    "encode_address",
    "encode_frame",
]

#: Reaches every meter on the bus (read address 0x13 uses it); may be shortened: the most
#: significant byte pairs only may be AA ("AAAA03020425" answers for ...03020425).
WILDCARD = "AAAAAAAAAAAA"
#: Broadcast address (time sync 0x08); meters do not answer it.
BROADCAST = "999999999999"
#: The largest L this decoder accepts; a larger one marks a false frame start.
MAX_DATA_LEN = 200
#: Wake-up bytes sent before each frame.
PREAMBLE_LEN = 4

_START, _END, _WAKE, _OFFSET = 0x68, 0x16, 0xFE, 0x33
_SCRAMBLE = bytes((byte + _OFFSET) & 0xFF for byte in range(256))  # for bytes.translate
_UNSCRAMBLE = bytes((byte - _OFFSET) & 0xFF for byte in range(256))
_OVERHEAD = 12  # 68, 6 address bytes, 68, C, L, CS, 16
_ADDRESS_RE = re.compile(r"(?:AA)*(?:\d\d)*")


class Function(enum.IntEnum):
    """Function codes (control bits 4-0) used here."""

    READ_1997 = 0x01
    BROADCAST_TIME = 0x08
    READ = 0x11
    READ_FOLLOWUP = 0x12
    READ_ADDRESS = 0x13
    WRITE = 0x14


@dataclass(frozen=True, slots=True)
class Control:
    """The control byte: function (bits 4-0), reply (7), abnormal reply (6), more frames (5)."""

    function: int
    is_reply: bool = False
    is_abnormal: bool = False
    has_more: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.function <= 0x1F:
            raise ValueFormatError(f"function code 0x{self.function:02X} is not 0..0x1F")

    @staticmethod
    def from_byte(byte: int) -> Control:
        """Example: ``Control.from_byte(0xD1)`` is a 0x11 reply with the abnormal bit."""
        return _CONTROLS[byte & 0xFF]

    @property
    def byte(self) -> int:
        return (
            self.function
            | (0x80 if self.is_reply else 0)
            | (0x40 if self.is_abnormal else 0)
            | (0x20 if self.has_more else 0)
        )


#: Every control byte's `Control`, built once (replies are decoded by the hundred thousand).
_CONTROLS = tuple(
    Control(byte & 0x1F, bool(byte & 0x80), bool(byte & 0x40), bool(byte & 0x20))
    for byte in range(256)
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; ``data`` is unscrambled (0x33 removed) and ``address`` is 12 characters."""

    address: str
    control: Control
    data: bytes = b""


#: Addresses and requests recur every cycle: each is computed once (tens of thousands of
#: meters a minute make these a collector's hot path).
_CACHED = 1 << 17


@lru_cache(maxsize=_CACHED)
def encode_address(address: str) -> bytes:
    """12 digits (or a wildcard form) to the 6 wire bytes, least significant byte first.

    Example::

        >>> encode_address("000102030425").hex(" ")
        '25 04 03 02 01 00'
    """
    text = address.upper()
    if len(text) != 12 or not _ADDRESS_RE.fullmatch(text):
        raise AddressError(f"address {address!r} is not 12 digits or an AA-prefixed wildcard")
    pairs = [text[i : i + 2] for i in range(10, -2, -2)]
    return bytes(0xAA if pair == "AA" else int_to_bcd(int(pair), 1)[0] for pair in pairs)


@lru_cache(maxsize=_CACHED)
def decode_address(data: bytes) -> str:
    """The inverse of `encode_address`; `AddressError` on bytes that are no address.

    Example::

        >>> decode_address(bytes.fromhex("250403020100"))
        '000102030425'
    """
    if len(data) != 6:
        raise AddressError(f"an address has 6 bytes, not {len(data)}")
    try:
        text = "".join(
            "AA" if byte == 0xAA else f"{bcd_to_int(bytes([byte])):02d}" for byte in data[::-1]
        )
    except ValueFormatError:
        raise AddressError(f"address bytes {data.hex(' ').upper()} are not BCD") from None
    if not _ADDRESS_RE.fullmatch(text):
        raise AddressError(f"address {text} has AA below a digit")
    return text


def address_matches(pattern: str, address: str) -> bool:
    """True if ``address`` (12 characters) is ``pattern`` or fits its AA wildcard pairs.

    Example: ``address_matches("AAAA03020425", "000103020425")`` is True.
    """
    if pattern == address:
        return True
    if "A" not in pattern:  # no wildcard pair: only the same address matches
        return False
    return all(pattern[i : i + 2] in ("AA", address[i : i + 2]) for i in range(0, 12, 2))


def encode_frame(frame: Frame, *, preamble: int = PREAMBLE_LEN) -> bytes:
    """A frame to wire bytes, led by ``preamble`` FE bytes.

    Example::

        >>> frame = Frame("000102030425", Control(Function.READ), bytes([0, 0, 1, 0]))
        >>> encode_frame(frame).hex(" ")
        'fe fe fe fe 68 25 04 03 02 01 00 68 11 04 33 33 34 33 e1 16'
    """
    if len(frame.data) > MAX_DATA_LEN:
        raise ValueFormatError(f"data field of {len(frame.data)} bytes exceeds {MAX_DATA_LEN}")
    body = bytearray((_START, *encode_address(frame.address), _START))
    body += bytes((frame.control.byte, len(frame.data)))
    body += frame.data.translate(_SCRAMBLE)
    return bytes((_WAKE,) * preamble) + bytes(body) + bytes((sum(body) & 0xFF, _END))


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """Exactly one of: need more bytes (``consumed == 0``), a ``frame``, or an ``error``.

    ``consumed`` counts every byte the caller may drop, leading garbage included; after an
    error it stops just past the bad start, so the next call resynchronises on a later 68.
    """

    consumed: int
    frame: Frame | None = None
    error: FrameError | None = None

    @property
    def need_more(self) -> bool:
        return self.frame is None and self.error is None


_NEED_MORE = DecodeResult(0)
_Parsed = tuple[Frame, int] | FrameError | None


def _address_byte_ok(byte: int) -> bool:
    return byte == 0xAA or (byte >> 4 <= 9 and byte & 0x0F <= 9)


def _parse_at(buf: bytes | bytearray, start: int) -> _Parsed:
    """The frame at ``start`` and its end, an error, or None while bytes are missing."""
    size = len(buf)
    address = _complete_address(buf, start) if size >= start + 8 else None
    if address is None:
        return _header_problem(buf, start)
    if size < start + 10:
        return None
    length = buf[start + 9]
    if length > MAX_DATA_LEN:
        return FrameFormatError(f"data length {length} exceeds {MAX_DATA_LEN}")
    end = start + _OVERHEAD + length
    if size < end:
        return None
    checksum = sum(buf[start : end - 2]) & 0xFF
    if checksum != buf[end - 2]:
        return ChecksumError(f"checksum 0x{buf[end - 2]:02X}, computed 0x{checksum:02X}")
    if buf[end - 1] != _END:
        return FrameFormatError(f"frame ends with 0x{buf[end - 1]:02X}, not 0x16")
    data = bytes(buf[start + 10 : end - 2]).translate(_UNSCRAMBLE)
    return Frame(address, _CONTROLS[buf[start + 8]], data), end


def _complete_address(buf: bytes | bytearray, start: int) -> str | None:
    """The address of a well-formed header at ``start`` (the cached common case), or None
    when the header is faulty and `_header_problem` must say exactly how."""
    if buf[start + 7] != _START:
        return None
    try:
        return decode_address(bytes(buf[start + 1 : start + 7]))
    except AddressError:
        return None


def _header_problem(buf: bytes | bytearray, start: int) -> FrameError | None:
    """What is wrong with the header at ``start`` that `_complete_address` refused, or None
    while its bytes are still missing."""
    size = len(buf)
    for i in range(start + 1, min(start + 7, size)):
        if not _address_byte_ok(buf[i]):
            return FrameFormatError(f"byte 0x{buf[i]:02X} at offset {i} is no address byte")
    if size < start + 8:
        return None
    if buf[start + 7] != _START:
        return FrameFormatError(f"no second 0x68 at offset {start + 7}")
    try:
        decode_address(bytes(buf[start + 1 : start + 7]))
    except AddressError as exc:
        return FrameFormatError(str(exc))
    raise AssertionError("a header _complete_address accepts has no problem")  # unreachable


def _no_start(buf: bytes | bytearray) -> DecodeResult:
    """Bytes without any 0x68: drop them, keeping a trailing wake-up run of sane length."""
    wake = len(buf) - len(buf.rstrip(bytes((_WAKE,))))
    keep = wake if wake <= MAX_DATA_LEN + _OVERHEAD else PREAMBLE_LEN
    if keep == len(buf):
        return _NEED_MORE
    return DecodeResult(
        len(buf) - keep, error=FrameFormatError(f"{len(buf) - keep} bytes hold no frame start")
    )


def decode(buf: bytes | bytearray) -> DecodeResult:
    """Look for the first frame in ``buf``; never raises, always tells how far to skip.

    An incomplete frame normally means "need more"; but when a complete, valid frame
    already follows it in ``buf``, the incomplete start is reported as an error so that a
    false start (a 68 in noise) cannot hide that frame. Example::

        >>> decode(bytes.fromhex("fe 68 25 04 03 02 01 00 68 11 04 33 33 34 33 e1 16")).consumed
        17
    """
    start = buf.find(_START)
    if start < 0:
        return _no_start(buf)
    parsed = _parse_at(buf, start)
    if parsed is None:
        later = buf.find(_START, start + 1)
        while later >= 0:
            if isinstance(_parse_at(buf, later), tuple):
                error = FrameFormatError(f"incomplete frame at offset {start} precedes a frame")
                return DecodeResult(later, error=error)
            later = buf.find(_START, later + 1)
        return _NEED_MORE
    if isinstance(parsed, FrameError):
        return DecodeResult(start + 1, error=parsed)
    frame, end = parsed
    return DecodeResult(end, frame=frame)


class FrameReader:
    """Stateful wrapper over `decode` for a byte stream that arrives in pieces.

    Example::

        reader = FrameReader()
        for item in reader.feed(chunk):
            if isinstance(item, Frame): ...  # else a FrameError to log and move past
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back while a frame is incomplete."""
        return len(self._buffer)

    def clear(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Add bytes; return the frames and errors they complete, in stream order."""
        self._buffer += data
        items: list[Frame | FrameError] = []
        while self._buffer:
            result = decode(self._buffer)
            if result.need_more:
                return items
            del self._buffer[: result.consumed]
            if result.frame is not None:
                items.append(result.frame)
            elif result.error is not None:
                items.append(result.error)
        return items

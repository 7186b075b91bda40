"""The DL/T 645 error tree: one root, `Dlt645Error`, and a class per kind of failure.

Decoding errors (`FrameError` and below) are *returned* by `decode`, never raised by it;
value, address and reply errors are raised by the functions that meet them.
"""

from __future__ import annotations

import enum

from collectors.errors import CollectorError

__all__ = [
    "AddressError",
    "AddressMismatchError",
    "BcdError",
    "ChecksumError",
    "Dlt645Error",
    "FrameError",
    "FrameFormatError",
    "IdentifierMismatchError",
    "MeterErrorReply",
    "MeterErrorWord",
    "ReplyMismatchError",
    "UnknownIdentifierError",
    "ValueFormatError",
]


class MeterErrorWord(enum.IntFlag):
    """The one data byte of an abnormal reply (control 0xD1 / 0xC1), bit by bit.

    Named after DL/T 645-2007; in 1997 bit0 reads "illegal data" and bit1 "wrong DI",
    which map onto `OTHER` and `NO_DATA` closely enough for handling.
    """

    OTHER = 0x01
    NO_DATA = 0x02
    UNAUTHORISED = 0x04
    BAUD_RATE = 0x08
    YEAR_ZONES = 0x10
    DAY_SLOTS = 0x20
    TARIFFS = 0x40


_KNOWN_BITS = 0x7F


class Dlt645Error(CollectorError):
    """Root of every DL/T 645 failure (the collector-level error of this protocol)."""


class FrameError(Dlt645Error):
    """A byte stream that is not a well-formed frame; `decode` returns these."""


class ChecksumError(FrameError):
    """The CS byte does not match the sum of the frame's bytes."""


class FrameFormatError(FrameError):
    """Wrong delimiters, length, address bytes, or bytes that hold no frame at all."""


class ValueFormatError(Dlt645Error, ValueError):
    """A value that does not fit its data identifier's format (length, range, date)."""


class BcdError(ValueFormatError):
    """A BCD nibble above 9."""


class AddressError(Dlt645Error, ValueError):
    """An address string that is neither 12 decimal digits nor a wildcard form."""


class UnknownIdentifierError(Dlt645Error, KeyError):
    """A data identifier that is not in the identifier table."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ReplyMismatchError(Dlt645Error):
    """A reply that answers some other request (a stale or misrouted frame)."""


class AddressMismatchError(ReplyMismatchError):
    """The reply comes from another meter than the one asked."""


class IdentifierMismatchError(ReplyMismatchError):
    """The reply carries another data identifier than the one asked for."""


class MeterErrorReply(Dlt645Error):  # noqa: N818 -- names what the meter sent
    """The meter answered with an abnormal reply; `error_word` holds the named flags.

    Example::

        try:
            parse_read_reply(frame, expected_address=addr, expected_di=di)
        except MeterErrorReply as exc:
            if MeterErrorWord.NO_DATA in exc.error_word: ...
    """

    def __init__(self, error_word: MeterErrorWord, *, address: str) -> None:
        self.error_word = error_word
        self.address = address
        names = [flag.name or "" for flag in MeterErrorWord if flag in error_word]
        unknown = int(error_word) & ~_KNOWN_BITS
        if unknown:
            names.append(f"0x{unknown:02X}")
        super().__init__(
            f"meter {address} replied with error word 0x{error_word:02X} "
            f"({', '.join(names) or 'no flag set'})"
        )

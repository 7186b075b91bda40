"""DL/T 645-2007 (and 1997 read) as a pure codec: frames, identifiers and values, no I/O.

Example::

    from collectors.dlt645 import FrameReader, Frame, encode_read, parse_read_reply

    request = encode_read("000102030425", 0x00010000)
    for item in FrameReader().feed(reply_bytes):
        if isinstance(item, Frame):
            parse_read_reply(item, expected_address="000102030425", expected_di=0x00010000)
"""

from .codec import (
    BROADCAST,
    MAX_DATA_LEN,
    PREAMBLE_LEN,
    WILDCARD,
    Control,
    DecodeResult,
    Frame,
    FrameReader,
    Function,
    decode,
    decode_address,
    encode_address,
    encode_frame,
)
from .commands import (
    ReadReply,
    encode_address_reply,
    encode_broadcast_time,
    encode_error_reply,
    encode_read,
    encode_read_address,
    encode_read_followup,
    encode_reply,
    parse_address_reply,
    parse_read_reply,
)
from .errors import (
    AddressError,
    AddressMismatchError,
    BcdError,
    ChecksumError,
    Dlt645Error,
    FrameError,
    FrameFormatError,
    IdentifierMismatchError,
    MeterErrorReply,
    MeterErrorWord,
    ReplyMismatchError,
    UnknownIdentifierError,
    ValueFormatError,
)
from .identifiers import IDENTIFIERS, BcdFormat, Identifier, Kind, Version, lookup
from .values import MeterDate, Value, bcd_to_int, decode_value, encode_value, int_to_bcd

__all__ = [
    "BROADCAST",
    "IDENTIFIERS",
    "MAX_DATA_LEN",
    "PREAMBLE_LEN",
    "WILDCARD",
    "AddressError",
    "AddressMismatchError",
    "BcdError",
    "BcdFormat",
    "ChecksumError",
    "Control",
    "DecodeResult",
    "Dlt645Error",
    "Frame",
    "FrameError",
    "FrameFormatError",
    "FrameReader",
    "Function",
    "Identifier",
    "IdentifierMismatchError",
    "Kind",
    "MeterDate",
    "MeterErrorReply",
    "MeterErrorWord",
    "ReadReply",
    "ReplyMismatchError",
    "UnknownIdentifierError",
    "Value",
    "ValueFormatError",
    "Version",
    "bcd_to_int",
    "decode",
    "decode_address",
    "decode_value",
    "encode_address",
    "encode_address_reply",
    "encode_broadcast_time",
    "encode_error_reply",
    "encode_frame",
    "encode_read",
    "encode_read_address",
    "encode_read_followup",
    "encode_reply",
    "encode_value",
    "int_to_bcd",
    "lookup",
    "parse_address_reply",
    "parse_read_reply",
]

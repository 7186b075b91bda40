"""DL/T 645 codec: hand-computed byte vectors for frames, identifiers and replies."""

from __future__ import annotations

import datetime as dt

import pytest

from collectors.dlt645 import (
    IDENTIFIERS,
    AddressError,
    AddressMismatchError,
    BcdError,
    ChecksumError,
    Control,
    Frame,
    FrameFormatError,
    FrameReader,
    IdentifierMismatchError,
    Kind,
    MeterDate,
    MeterErrorReply,
    MeterErrorWord,
    ReplyMismatchError,
    UnknownIdentifierError,
    Value,
    ValueFormatError,
    decode,
    decode_address,
    decode_value,
    encode_address,
    encode_address_reply,
    encode_broadcast_time,
    encode_error_reply,
    encode_frame,
    encode_read,
    encode_read_address,
    encode_read_followup,
    encode_reply,
    encode_value,
    lookup,
    parse_address_reply,
    parse_read_reply,
)
from meterhub.reading import TARIFFS, VALUE_FIELDS

H = bytes.fromhex
ADDRESS = "000102030425"
REQUEST = H("68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16")
REPLY = H("68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16")


def _frame(wire: bytes) -> Frame:
    result = decode(wire)
    assert result.frame is not None, result
    return result.frame


def test_worked_example() -> None:
    assert encode_read(ADDRESS, 0x00010000) == H("FE FE FE FE") + REQUEST
    assert decode(REPLY).consumed == len(REPLY)
    reply = parse_read_reply(_frame(REPLY), expected_address=ADDRESS, expected_di=0x00010000)
    assert (reply.di, reply.value, reply.more) == (0x00010000, 1206.42, False)
    assert encode_reply(ADDRESS, 0x00010000, encode_value(0x00010000, 1206.42))[4:] == REPLY


def test_published_captures() -> None:
    """2007 A-phase voltage and a 1997 total-energy exchange from published field logs."""
    voltage = _frame(H("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16"))
    assert (
        parse_read_reply(voltage, expected_address="000000000161", expected_di=0x02010100).value
        == 100.1
    )
    assert encode_read("000003430163", 0x9010, version=1997) == H(
        "FE FE FE FE 68 63 01 43 03 00 00 68 01 02 43 C3 83 16"
    )
    energy = _frame(H("68 54 07 13 00 80 13 68 81 06 43 C3 34 33 33 33 2B 16"))
    assert (
        parse_read_reply(energy, expected_address="138000130754", expected_di=0x9010).value == 0.01
    )


_D = MeterDate(dt.date(2026, 3, 1), 0)  # a Sunday
#: (DI, edition, value, unscrambled value bytes), each worked out by hand.
VECTORS: list[tuple[int, int, Value, str]] = [
    (0x00000000, 2007, -1234.56, "56 34 12 80"),
    (0x00010000, 2007, 1206.42, "42 06 12 00"),
    (0x00010100, 2007, 999999.99, "99 99 99 99"),
    (0x00010200, 2007, 0.01, "01 00 00 00"),
    (0x00010300, 2007, 123456.78, "78 56 34 12"),
    (0x00010400, 2007, 5000.0, "00 00 50 00"),
    (
        0x0001FF00,
        2007,
        (1206.42, 1.0, 2.0, 3.0, 1200.42),
        "42061200 00010000 00020000 00030000 42001200",
    ),
    (0x00020000, 2007, 12.34, "34 12 00 00"),
    (0x02010100, 2007, 220.1, "01 22"),
    (0x02010200, 2007, 100.1, "01 10"),
    (0x02010300, 2007, 0.0, "00 00"),
    (0x0201FF00, 2007, (220.1, 221.2, 219.9), "0122 1222 9921"),
    (0x02020100, 2007, 5.123, "23 51 00"),
    (0x02020200, 2007, -1.5, "00 15 80"),
    (0x02020300, 2007, 799.999, "99 99 79"),
    (0x0202FF00, 2007, (1.0, -2.0, 0.5), "001000 002080 000500"),
    (0x02030000, 2007, -0.5, "00 50 80"),
    (0x02060000, 2007, -1.0, "00 90"),
    (0x04000101, 2007, _D, "00 01 03 26"),
    (0x04000102, 2007, dt.time(8, 15, 30), "30 15 08"),
    (0x04000306, 2007, 200, "00 02 00"),
    (0x04000307, 2007, 100, "00 01 00"),
    (0x9010, 1997, 0.01, "01 00 00 00"),
    (0x9011, 1997, 1.0, "00 01 00 00"),
    (0x9012, 1997, 2.5, "50 02 00 00"),
    (0x9013, 1997, 10.0, "00 10 00 00"),
    (0x9014, 1997, 100.0, "00 00 01 00"),
    (0x901F, 1997, (4.0, 0.0, 1.0, 2.0, 1.0), "00040000 00000000 00010000 00020000 00010000"),
    (0x9020, 1997, 0.0, "00 00 00 00"),
    (0xB611, 1997, 220.0, "20 02"),
    (0xB612, 1997, 231.0, "31 02"),
    (0xB613, 1997, 0.0, "00 00"),
    (0xB61F, 1997, (220.0, 221.0, 219.0), "2002 2102 1902"),
    (0xB621, 1997, 5.12, "12 05"),
    (0xB622, 1997, 99.99, "99 99"),
    (0xB623, 1997, 0.01, "01 00"),
    (0xB62F, 1997, (1.0, 2.0, 3.0), "0001 0002 0003"),
    (0xB630, 1997, 12.3456, "56 34 12"),
    (0xB650, 1997, 0.985, "85 09"),
    (0xC010, 1997, _D, "00 01 03 26"),
    (0xC011, 1997, dt.time(23, 59, 59), "59 59 23"),
]


@pytest.mark.parametrize(("di", "version", "value", "wire"), VECTORS)
def test_value_vector(di: int, version: int, value: Value, wire: str) -> None:
    data = H(wire)
    assert decode_value(di, data, version=version) == value  # type: ignore[arg-type]
    assert encode_value(di, value, version=version) == data  # type: ignore[arg-type]


def test_every_identifier_has_a_vector() -> None:
    covered = {(di, version) for di, version, _, _ in VECTORS}
    rows = {(row.di, 2007) for row in IDENTIFIERS}
    rows |= {(row.di_1997, 1997) for row in IDENTIFIERS if row.di_1997 is not None}
    assert covered == rows


def test_identifier_table() -> None:
    assert len({row.di for row in IDENTIFIERS}) == len(IDENTIFIERS)
    assert all(field in VALUE_FIELDS for row in IDENTIFIERS for field in row.fields)
    assert all(row.kind is Kind.NUMBER for row in IDENTIFIERS if row.count > 1)
    tariffs = [lookup(0x00010000 + (n << 8)).fields for n in range(1, 5)]
    assert tariffs == [("energy_sharp",), ("energy_peak",), ("energy_flat",), ("energy_valley",)]
    assert tariffs == [(f"energy_{tariff}",) for tariff in TARIFFS]
    assert lookup(0x0202FF00).fields == ("current_a", "current_b", "current_c")
    assert lookup(0xB630, version=1997) is lookup(0x02030000)


@pytest.mark.parametrize(
    ("di", "version", "data", "error"),
    [
        (0x00010000, 2007, "0A 00 00 00", BcdError),
        (0x00010000, 2007, "00 00 00 A0", BcdError),
        (0x02020100, 2007, "00 00 8A", BcdError),
        (0x00010000, 2007, "00 00 00", ValueFormatError),
        (0x0201FF00, 2007, "01 22 01 22", ValueFormatError),
        (0x04000101, 2007, "00 01 13 26", ValueFormatError),
        (0x04000101, 2007, "07 01 03 26", ValueFormatError),
        (0x04000102, 2007, "00 00 24", ValueFormatError),
        (0x12345678, 2007, "00", UnknownIdentifierError),
        (0x04000306, 1997, "00 00 00", UnknownIdentifierError),
    ],
)
def test_value_decode_errors(di: int, version: int, data: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_value(di, H(data), version=version)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("di", "value"),
    [
        (0x02020100, 800.0),
        (0x00010000, 1e6),
        (0x00010000, -1.0),
        (0x00010000, float("nan")),
        (0x02010100, "220"),
        (0x0201FF00, (1.0, 2.0)),
        (0x04000306, 1.5),
        (0x04000101, dt.date(2026, 3, 1)),
    ],
)
def test_value_encode_errors(di: int, value: object) -> None:
    with pytest.raises(ValueFormatError):
        encode_value(di, value)  # type: ignore[arg-type]


def test_sign_bit_keeps_negative_zero() -> None:
    assert str(decode_value(0x02020100, H("00 00 80"))) == "-0.0"
    assert encode_value(0x02020100, -0.0) == H("00 00 80")
    assert encode_value(0x00010000, -0.0) == H("00 00 00 00")  # unsigned: no sign bit


@pytest.mark.parametrize(
    ("address", "wire"),
    [
        (ADDRESS, "25 04 03 02 01 00"),
        ("999999999999", "99" * 6),
        ("AAAAAAAAAAAA", "AA" * 6),
        ("AAAA03020425", "25 04 02 03 AA AA"),
    ],
)
def test_address(address: str, wire: str) -> None:
    assert encode_address(address) == H(wire)
    assert decode_address(H(wire)) == address


@pytest.mark.parametrize(
    "bad", ["12345", "0001020304255", "00010203042A", "0001020304AA", "x" * 12]
)
def test_address_rejected(bad: str) -> None:
    with pytest.raises(AddressError):
        encode_address(bad)


def test_control_bits() -> None:
    assert Control.from_byte(0xD1) == Control(0x11, is_reply=True, is_abnormal=True)
    assert Control.from_byte(0xB1) == Control(0x11, is_reply=True, has_more=True)
    assert all(Control.from_byte(byte).byte == byte for byte in range(256))
    with pytest.raises(ValueFormatError):
        Control(0x20)


def test_request_builders() -> None:
    assert encode_read_followup(ADDRESS, 0x0001FF00, seq=1)[4:] == H(
        "68 25 04 03 02 01 00 68 12 05 33 32 34 33 34 16 16"
    )
    assert encode_read_address() == H("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
    assert encode_broadcast_time(dt.datetime(2026, 3, 1, 8, 15, 0)) == H(
        "FE FE FE FE 68 99 99 99 99 99 99 68 08 06 33 48 3B 34 36 59 ED 16"
    )
    with pytest.raises(ValueFormatError):
        encode_read(ADDRESS, 0x10000, version=1997)


@pytest.mark.parametrize("flag", list(MeterErrorWord))
def test_error_reply_names_each_flag(flag: MeterErrorWord) -> None:
    frame = _frame(encode_error_reply(ADDRESS, flag))
    with pytest.raises(MeterErrorReply) as caught:
        parse_read_reply(frame, expected_address=ADDRESS, expected_di=0x00010000)
    assert caught.value.error_word == flag
    assert flag.name is not None and flag.name in str(caught.value)


def test_error_reply_bytes() -> None:
    assert encode_error_reply(ADDRESS, MeterErrorWord.NO_DATA)[4:] == H(
        "68 25 04 03 02 01 00 68 D1 01 35 06 16"
    )
    wire = H("68 25 04 03 02 01 00 68 C1 01 35 F6 16")
    assert encode_error_reply(ADDRESS, 0x02, version=1997)[4:] == wire
    with pytest.raises(MeterErrorReply) as caught:
        parse_read_reply(_frame(wire), expected_address=ADDRESS, expected_di=0x9010)
    assert caught.value.error_word == MeterErrorWord.NO_DATA
    word = MeterErrorWord(0x45)
    assert word == MeterErrorWord.OTHER | MeterErrorWord.UNAUTHORISED | MeterErrorWord.TARIFFS


def test_reply_checks() -> None:
    frame = _frame(REPLY)
    with pytest.raises(AddressMismatchError):
        parse_read_reply(frame, expected_address="000102030426", expected_di=0x00010000)
    with pytest.raises(IdentifierMismatchError):
        parse_read_reply(frame, expected_address=ADDRESS, expected_di=0x00010100)
    with pytest.raises(ReplyMismatchError):  # an echoed request is no reply
        parse_read_reply(_frame(REQUEST), expected_address=ADDRESS, expected_di=0x00010000)
    wildcard = parse_read_reply(frame, expected_address="AAAAAAAAAAAA", expected_di=0x00010000)
    assert wildcard.value == 1206.42


def test_followup_and_address_replies() -> None:
    wire = H("68 25 04 03 02 01 00 68 92 09 33 34 34 33 75 39 45 33 34 C2 16")
    value = encode_value(0x00010100, 1206.42)
    assert encode_reply(ADDRESS, 0x00010100, value, seq=1)[4:] == wire
    reply = parse_read_reply(_frame(wire), expected_address=ADDRESS, expected_di=0x00010100)
    assert (reply.value, reply.seq) == (1206.42, 1)
    more = _frame(encode_reply(ADDRESS, 0x00010000, value, more=True))
    assert more.control.byte == 0xB1
    assert parse_read_reply(more, expected_address=ADDRESS, expected_di=0x00010000).more
    answer = H("68 25 04 03 02 01 00 68 93 06 58 37 36 35 34 33 F9 16")
    assert encode_address_reply(ADDRESS)[4:] == answer
    assert parse_address_reply(_frame(answer)) == ADDRESS


@pytest.mark.parametrize("preamble", range(5))
def test_preamble(preamble: int) -> None:
    wire = b"\xfe" * preamble + REPLY
    result = decode(wire)
    assert result.consumed == len(wire) and result.frame is not None
    assert encode_frame(result.frame, preamble=preamble) == wire


def test_leading_garbage_and_false_starts() -> None:
    wire = H("00 12 68 01 02 FE FE") + REPLY
    items = FrameReader().feed(wire)
    assert items[-1] == _frame(REPLY)
    assert all(isinstance(item, FrameFormatError) for item in items[:-1])
    # a 68 in noise claiming a long frame must not hide the complete frame behind it
    false_start = H("68 11 22 33 44 55 66 68 91 C8")
    result = decode(false_start + REPLY)
    assert isinstance(result.error, FrameFormatError) and result.consumed == len(false_start)


def test_decode_errors_resynchronise() -> None:
    bad_sum = REPLY[:-2] + b"\x00\x16"
    assert isinstance(decode(bad_sum).error, ChecksumError)
    assert decode(b"\x00" + bad_sum).consumed == 2
    assert isinstance(decode(REPLY[:-1] + b"\x17").error, FrameFormatError)
    assert isinstance(decode(H("68 25 04 03 02 01 00 68 91 C9")).error, FrameFormatError)
    assert decode(REPLY[:-1]).need_more and decode(REPLY[:-1]).consumed == 0
    assert decode(b"").need_more and decode(b"\xfe\xfe").need_more
    noise = decode(b"\x01\x02\xfe")
    assert isinstance(noise.error, FrameFormatError) and noise.consumed == 2
    items = FrameReader().feed(bad_sum + REPLY)
    assert isinstance(items[0], ChecksumError) and items[-1] == _frame(REPLY)


def test_largest_frame() -> None:
    frame = Frame(ADDRESS, Control(0x11, is_reply=True), bytes(range(200)))
    assert decode(encode_frame(frame)).frame == frame
    with pytest.raises(ValueFormatError):
        encode_frame(Frame(ADDRESS, Control(0x11), bytes(201)))


def test_split_delivery() -> None:
    reader = FrameReader()
    stream = encode_read(ADDRESS, 0x00010000) + REPLY + b"\x00\xfe" + REPLY
    items = [item for byte in stream for item in reader.feed(bytes([byte]))]
    assert items[0] == _frame(REQUEST) and items[-1] == _frame(REPLY)
    assert sum(isinstance(item, Frame) for item in items) == 3
    assert reader.pending == 0
    assert [*reader.feed(REPLY[:7]), *reader.feed(REPLY[7:])] == [_frame(REPLY)]

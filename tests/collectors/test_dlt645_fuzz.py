"""DL/T 645 codec under hypothesis: round trips, and a decoder that survives any bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.dlt645 import (
    IDENTIFIERS,
    ChecksumError,
    Control,
    Frame,
    FrameFormatError,
    FrameReader,
    Identifier,
    Kind,
    MeterDate,
    Value,
    Version,
    decode,
    decode_address,
    decode_value,
    encode_address,
    encode_frame,
    encode_read,
    encode_reply,
    encode_value,
    int_to_bcd,
    parse_read_reply,
)

QUICK = settings(max_examples=250, deadline=None, database=None)
SOAK = settings(max_examples=10_000, deadline=None, database=None)

DIGITS = "0123456789"
addresses = st.text(DIGITS, min_size=12, max_size=12)
shortened = st.integers(0, 6).flatmap(
    lambda k: st.text(DIGITS, min_size=12 - 2 * k, max_size=12 - 2 * k).map(lambda d: "AA" * k + d)
)
ROWS: list[tuple[Identifier, Version]] = [(row, 2007) for row in IDENTIFIERS]
ROWS += [(row, 1997) for row in IDENTIFIERS if row.di_1997 is not None]


def _di(row: Identifier, version: Version) -> int:
    return row.di if version == 2007 or row.di_1997 is None else row.di_1997


def _values(row: Identifier, version: Version) -> st.SearchStrategy[Value]:
    fmt = row.format_for(version)
    if row.kind is Kind.NUMBER:
        low = -fmt.max_scaled if fmt.signed else 0
        one = st.integers(low, fmt.max_scaled).map(lambda n: n / 10**fmt.decimals)
        return st.tuples(*[one] * row.count) if row.count > 1 else one
    if row.kind is Kind.INTEGER:
        return st.integers(0, fmt.max_scaled)
    if row.kind is Kind.DATE:
        dates = st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))
        return st.builds(MeterDate, dates, st.integers(0, 6))
    return st.times().map(lambda t: t.replace(microsecond=0))


row_values = st.sampled_from(ROWS).flatmap(
    lambda rv: st.tuples(st.just(rv[0]), st.just(rv[1]), _values(*rv))
)
frames = st.builds(
    Frame,
    st.one_of(addresses, shortened),
    st.integers(0, 255).map(Control.from_byte),
    st.binary(max_size=200),
)


@QUICK
@given(st.one_of(addresses, shortened))
def test_address_round_trip(address: str) -> None:
    assert decode_address(encode_address(address)) == address


@QUICK
@given(row_values, addresses)
def test_value_round_trip(item: tuple[Identifier, Version, Value], address: str) -> None:
    row, version, value = item
    di = _di(row, version)
    data = encode_value(di, value, version=version)
    assert decode_value(di, data, version=version) == value
    result = decode(encode_reply(address, di, data, version=version))
    assert result.frame is not None
    reply = parse_read_reply(result.frame, expected_address=address, expected_di=di)
    assert reply.value == value


@QUICK
@given(st.sampled_from([rv for rv in ROWS if rv[0].kind in (Kind.NUMBER, Kind.INTEGER)]), st.data())
def test_bcd_bytes_round_trip(rv: tuple[Identifier, Version], data: st.DataObject) -> None:
    row, version = rv
    fmt = row.format_for(version)
    chunks = []
    for _ in range(row.count):
        digits = [data.draw(st.integers(0, 99)) for _ in range(fmt.size - 1)]
        top = data.draw(st.integers(0, 79 if fmt.signed else 99))
        sign = 0x80 if fmt.signed and data.draw(st.booleans()) else 0
        chunks.append(
            b"".join(int_to_bcd(n, 1) for n in digits) + bytes([top // 10 << 4 | top % 10 | sign])
        )
    wire = b"".join(chunks)
    value = decode_value(_di(row, version), wire, version=version)
    assert encode_value(_di(row, version), value, version=version) == wire


@QUICK
@given(frames, st.integers(0, 8), st.binary(max_size=20).map(lambda b: b.replace(b"\x68", b"")))
def test_frame_round_trip(frame: Frame, preamble: int, garbage: bytes) -> None:
    wire = garbage + encode_frame(frame, preamble=preamble)
    result = decode(wire)
    assert (result.frame, result.consumed) == (frame, len(wire))


@QUICK
@given(addresses, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF))
def test_read_request_round_trip(address: str, di: int, di_1997: int) -> None:
    for version, value, width in ((2007, di, 4), (1997, di_1997, 2)):
        frame = decode(encode_read(address, value, version=version)).frame  # type: ignore[arg-type]
        assert frame is not None and frame.address == address
        assert frame.data == value.to_bytes(width, "little")
        assert frame.control.function == (0x11 if version == 2007 else 0x01)


def _drive(buf: bytes, cuts: Sequence[int] = ()) -> tuple[list[tuple[int, Frame]], int]:
    """Decode ``buf`` as a caller would, delivered up to each cut in turn; check every
    result; return the frames with their end offsets and how far the caller got."""
    found: list[tuple[int, Frame]] = []
    offset = 0
    for available in [*sorted(cuts), len(buf)]:
        for _ in range(len(buf) + 1):
            result = decode(buf[offset:available])
            assert [result.need_more, result.frame is not None, result.error is not None].count(
                True
            ) == 1
            if result.need_more:
                assert result.consumed == 0
                break
            assert 0 < result.consumed <= available - offset
            if result.error is not None:
                assert type(result.error) in (ChecksumError, FrameFormatError)
            elif result.frame is not None:
                found.append((offset + result.consumed, result.frame))
            offset += result.consumed
        else:
            pytest.fail("the decoder made no progress")
    return found, offset


def _mutate(wire: bytes, data: st.DataObject) -> bytes:
    """Bit flips, truncation, insertion and deletion at drawn positions."""
    buf = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif buf:
            del buf[at]
    return bytes(buf)


def _garbage(data: st.DataObject) -> bytes:
    parts = []
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            parts.append(data.draw(st.binary(max_size=120)))
        else:
            parts.append(_mutate(encode_frame(data.draw(frames)), data))
    return b"".join(parts)


def _check_garbage_then_frame(data: st.DataObject) -> None:
    garbage, frame = _garbage(data), data.draw(frames)
    wire = encode_frame(frame)
    buf = garbage + wire
    cuts = data.draw(st.lists(st.integers(0, len(buf)), max_size=6))
    found, offset = _drive(buf, cuts)
    if (len(buf), frame) in found:
        assert offset == len(buf)
    else:  # only a checksum-valid frame reaching into it may have swallowed the frame
        assert any(end > len(garbage) + 4 for end, _ in found), (garbage.hex(), found)
    reader, items = FrameReader(), []
    for start, stop in zip([0, *sorted(cuts)], [*sorted(cuts), len(buf)], strict=True):
        items += reader.feed(buf[start:stop])
    assert [item for item in items if isinstance(item, Frame)] == [f for _, f in found]


@QUICK
@given(st.binary(max_size=600))
def test_random_bytes_never_break_the_decoder(buf: bytes) -> None:
    _drive(buf)
    _drive(buf, cuts=range(0, len(buf), 7))


@QUICK
@given(st.data())
def test_valid_frame_survives_garbage(data: st.DataObject) -> None:
    _check_garbage_then_frame(data)


@pytest.mark.slow
@SOAK
@given(st.data())
def test_valid_frame_survives_garbage_soak(data: st.DataObject) -> None:
    _check_garbage_then_frame(data)


@pytest.mark.slow
@SOAK
@given(st.binary(max_size=2000))
def test_random_bytes_soak(buf: bytes) -> None:
    _drive(buf, cuts=range(0, len(buf), 13))

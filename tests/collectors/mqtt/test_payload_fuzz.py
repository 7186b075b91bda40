"""The payload parser under hypothesis: any bytes, any JSON, never an exception."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.mqtt.payload import ParsedPayload, encode_payload, parse_payload
from ingest.quarantine import QuarantineRecord
from meterhub.reading import VALUE_FIELDS

QUICK = settings(max_examples=300, deadline=None, database=None)
SOAK = settings(max_examples=20_000, deadline=None, database=None)
GW = "gw-fuzz"


def resolve(channel: int, ts: datetime) -> int | None:
    return channel if 0 <= channel < 1000 else None


def _postgres_safe(record: QuarantineRecord) -> None:
    for text in (record.source, record.detail, record.payload):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates


def _accounted(parsed: ParsedPayload) -> None:
    for record in parsed.rejects:
        _postgres_safe(record)
    if parsed.rejected_whole:
        assert len(parsed.rejects) == 1 and parsed.readings == [] and parsed.elements == 0
    else:
        assert len(parsed.readings) + len(parsed.rejects) == parsed.elements
    for reading in parsed.readings:
        assert reading.ts.utcoffset() is not None and reading.source == f"mqtt:{GW}"


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.datetimes(
    min_value=datetime(1960, 1, 1),
    max_value=datetime(2300, 1, 1),
    timezones=st.one_of(st.none(), offsets),
).map(datetime.isoformat)
field_values = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1)
almost_elements = st.fixed_dictionaries(
    {"channel": st.integers(-5, 2000) | json_leaves, "ts": timestamps | json_leaves},
    optional={name: field_values | json_leaves for name in (*VALUE_FIELDS, "quality")},
)
almost_messages = st.fixed_dictionaries(
    {},
    optional={
        "v": st.just(1) | json_leaves,
        "gateway": st.just(GW) | json_leaves,
        "sent_at": timestamps | json_leaves,
        "readings": st.lists(almost_elements | json_values, max_size=8) | json_values,
    },
)


def _check_bytes(payload: bytes) -> None:
    _accounted(parse_payload(payload, gateway_id=GW, resolve=resolve))


def _check_message(message: dict[str, object]) -> None:
    _accounted(parse_payload(orjson.dumps(message), gateway_id=GW, resolve=resolve))


@QUICK
@given(st.binary(max_size=512))
def test_any_bytes(payload: bytes) -> None:
    _check_bytes(payload)


@QUICK
@given(almost_messages)
def test_almost_valid_messages(message: dict[str, object]) -> None:
    _check_message(message)


@QUICK
@given(json_values)
def test_any_json(value: object) -> None:
    _check_bytes(orjson.dumps(value))


@QUICK
@given(
    st.lists(st.tuples(st.integers(0, 999), st.floats(0, 999_999, allow_nan=False)), max_size=20)
)
def test_valid_messages_pass_whole(items: list[tuple[int, float]]) -> None:
    ts = datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=8)))
    elements = [{"channel": c, "ts": ts, "energy": e} for c, e in items]
    parsed = parse_payload(encode_payload(GW, elements, sent_at=ts), gateway_id=GW, resolve=resolve)
    assert parsed.rejects == []
    assert [(r.meter_id, r.energy) for r in parsed.readings] == items


@pytest.mark.slow
@SOAK
@given(st.binary(max_size=4096) | almost_messages.map(orjson.dumps))
def test_soak_any_payload(payload: bytes) -> None:
    _check_bytes(payload)

"""The v1 payload: each problem has its own quarantine record, good elements still pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from collectors.mqtt.payload import (
    MAX_QUARANTINED_BYTES,
    encode_payload,
    parse_payload,
    raw_text,
    source_of,
)
from ingest.quarantine import Reason
from meterhub.reading import LOCAL_TZ, Reading

GW = "gw-0001"
TS = "2026-03-01T08:15:00+08:00"
T = datetime(2026, 3, 1, 8, 15, tzinfo=LOCAL_TZ)
CHANNELS = {1: 101, 2: 102, 3: 103}


def resolve(channel: int, ts: datetime) -> int | None:
    return CHANNELS.get(channel)


def message(readings: object, **top: object) -> bytes:
    body: dict[str, object] = {"v": 1, "gateway": GW, "sent_at": TS, "readings": readings}
    body.update(top)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def test_a_full_element_becomes_a_reading() -> None:
    element = {
        "channel": 3,
        "ts": TS,
        "energy": 1206.42,
        "energy_sharp": 100,
        "energy_peak": 400.5,
        "energy_flat": 500.0,
        "energy_valley": 205.92,
        "power": 3.5,
        "voltage_a": 229.8,
        "voltage_b": 230.1,
        "voltage_c": 231.0,
        "current_a": 5.1,
        "current_b": 5.0,
        "current_c": 4.9,
        "power_factor": 0.95,
        "quality": 8,
        "firmware_extra": "ignored",
    }
    parsed = parse_payload(message([element]), gateway_id=GW, resolve=resolve)
    assert parsed.rejects == [] and parsed.elements == 1 and not parsed.rejected_whole
    (reading,) = parsed.readings
    assert reading == Reading(
        meter_id=103,
        ts=T,
        energy=1206.42,
        energy_sharp=100.0,
        energy_peak=400.5,
        energy_flat=500.0,
        energy_valley=205.92,
        power=3.5,
        voltage_a=229.8,
        voltage_b=230.1,
        voltage_c=231.0,
        current_a=5.1,
        current_b=5.0,
        current_c=4.9,
        power_factor=0.95,
        quality=8,
        source="mqtt:gw-0001",
    )
    assert reading.ts.utcoffset() == timedelta(hours=8)
    assert type(reading.energy_sharp) is float


def test_encode_then_parse_round_trips() -> None:
    elements = [
        {"channel": c, "ts": T + timedelta(minutes=15 * c), "energy": 1.5 * c} for c in (1, 2)
    ]
    body = encode_payload(GW, elements, sent_at=T)
    assert orjson.loads(body)["readings"][0]["ts"] == TS.replace("08:15", "08:30")
    parsed = parse_payload(body, gateway_id=GW, resolve=resolve)
    assert [(r.meter_id, r.ts, r.energy) for r in parsed.readings] == [
        (101, T + timedelta(minutes=15), 1.5),
        (102, T + timedelta(minutes=30), 3.0),
    ]


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"", Reason.MALFORMED_PAYLOAD, "not JSON"),
        (b"{not json", Reason.MALFORMED_PAYLOAD, "not JSON"),
        (b'{"v": 1, "readings": [NaN]}', Reason.MALFORMED_PAYLOAD, "not JSON"),
        (b"\xff\xfe", Reason.MALFORMED_PAYLOAD, "not JSON"),
        (b"[]", Reason.WRONG_TYPE, "payload is a list"),
        (b'"text"', Reason.WRONG_TYPE, "payload is a string"),
        (b"null", Reason.WRONG_TYPE, "payload is null"),
        (message([], v=...), Reason.MISSING_FIELD, "no 'v'"),
        (message([], v=2), Reason.MALFORMED_PAYLOAD, "unsupported payload version 2"),
        (message([], v="1"), Reason.MALFORMED_PAYLOAD, "unsupported payload version '1'"),
        (message([], v=True), Reason.MALFORMED_PAYLOAD, "unsupported payload version True"),
        (message([], gateway=...), Reason.MISSING_FIELD, "no 'gateway'"),
        (message([], gateway=7), Reason.WRONG_TYPE, "'gateway' is an integer"),
        (message([], gateway="gw-0002"), Reason.MALFORMED_PAYLOAD, "'gw-0002' is not the topic"),
        (message(...), Reason.MISSING_FIELD, "no 'readings'"),
        (message({"channel": 1}), Reason.WRONG_TYPE, "'readings' is an object"),
        (message([], sent_at="yesterday"), Reason.MALFORMED_PAYLOAD, "'sent_at'"),
        (message([], sent_at="2026-03-01T08:15:00"), Reason.NAIVE_TIMESTAMP, "'sent_at'"),
        (message([], sent_at=1767225600), Reason.WRONG_TYPE, "'sent_at' is an integer"),
    ],
)
def test_a_bad_message_is_one_record_with_the_raw_payload(
    payload: bytes, reason: Reason, detail: str
) -> None:
    parsed = parse_payload(payload, gateway_id=GW, resolve=resolve)
    assert parsed.readings == [] and parsed.elements == 0 and parsed.rejected_whole
    (record,) = parsed.rejects
    assert (record.source, record.reason) == (source_of(GW), reason)
    assert detail in record.detail
    assert record.payload == raw_text(payload)
    assert record.meter_id is None and record.ts is None


def _good(channel: object = 1, **changes: object) -> dict[str, object]:
    element: dict[str, object] = {"channel": channel, "ts": TS, "energy": 10.0}
    element.update(changes)
    return {k: v for k, v in element.items() if v is not ...}


@pytest.mark.parametrize(
    ("element", "reason", "detail"),
    [
        (42, Reason.WRONG_TYPE, "readings[1] is an integer, expected an object"),
        ([1, TS, 2.0], Reason.WRONG_TYPE, "readings[1] is a list"),
        (_good(channel=...), Reason.MISSING_FIELD, "readings[1] has no 'channel'"),
        (_good(channel=None), Reason.MISSING_FIELD, "has no 'channel'"),
        (_good(channel="2"), Reason.WRONG_TYPE, "channel is a string"),
        (_good(channel=2.0), Reason.WRONG_TYPE, "channel is a number"),
        (_good(channel=True), Reason.WRONG_TYPE, "channel is a boolean"),
        (_good(ts=...), Reason.MISSING_FIELD, "has no 'ts'"),
        (_good(ts=1772324100), Reason.WRONG_TYPE, "readings[1].ts is an integer"),
        (_good(ts="01/03/2026 08:15"), Reason.MALFORMED_PAYLOAD, "not an ISO 8601 timestamp"),
        (_good(ts="2026-03-01T08:15:00"), Reason.NAIVE_TIMESTAMP, "has no UTC offset"),
        (_good(ts="1900-03-01T08:15:00+08:00"), Reason.OUT_OF_RANGE, "outside 1970-2200"),
        (_good(energy="12.5"), Reason.WRONG_TYPE, "readings[1].energy is a string"),
        (_good(power=False), Reason.WRONG_TYPE, "readings[1].power is a boolean"),
        (_good(voltage_a={"v": 1}), Reason.WRONG_TYPE, "voltage_a is an object"),
        (_good(energy=None), Reason.MISSING_FIELD, "has no value"),
        (_good(energy=...), Reason.MISSING_FIELD, "has no value"),
        (_good(quality=1.0), Reason.WRONG_TYPE, "quality is a number"),
        (_good(channel=9), Reason.UNKNOWN_METER, "no meter on channel 9"),
    ],
)
def test_a_bad_element_is_its_own_record_and_the_others_pass(
    element: object, reason: Reason, detail: str
) -> None:
    parsed = parse_payload(message([_good(1), element, _good(2)]), gateway_id=GW, resolve=resolve)
    assert [r.meter_id for r in parsed.readings] == [101, 102]
    assert parsed.elements == 3 and not parsed.rejected_whole
    (record,) = parsed.rejects
    assert (record.source, record.reason) == ("mqtt:gw-0001", reason)
    assert detail in record.detail
    assert orjson.loads(record.payload) == element
    if (
        isinstance(element, dict)
        and type(element.get("channel")) is int
        and element.get("ts") == TS
    ):
        assert (record.ts, record.meter_id) == (T, CHANNELS.get(element["channel"]))
    else:  # refused before the meter time was known
        assert (record.ts, record.meter_id) == (None, None)


def test_nulls_are_absent_values_and_integers_become_floats() -> None:
    element = _good(energy=12, power=None, current_a=0)
    (reading,) = parse_payload(message([element]), gateway_id=GW, resolve=resolve).readings
    assert (reading.energy, reading.power, reading.current_a) == (12.0, None, 0.0)
    assert type(reading.energy) is float and reading.quality == 0


def test_the_resolver_sees_the_meter_time() -> None:
    seen: list[tuple[int, datetime]] = []

    def spy(channel: int, ts: datetime) -> int:
        seen.append((channel, ts))
        return 5

    utc = "2026-03-01T00:15:00Z"
    parse_payload(message([_good(2, ts=utc)]), gateway_id=GW, resolve=spy)
    assert seen == [(2, T)]
    assert seen[0][1].tzinfo == UTC


def test_an_empty_batch_is_fine() -> None:
    parsed = parse_payload(message([]), gateway_id=GW, resolve=resolve)
    assert (parsed.readings, parsed.rejects, parsed.elements) == ([], [], 0)


def test_quarantine_text_is_valid_for_postgres() -> None:
    payload = b'{"v": 1, "gateway": "gw\\u0000x", "readings": []} \xff\x00'
    (record,) = parse_payload(payload, gateway_id=GW, resolve=resolve).rejects
    assert "\x00" not in record.payload and "\x00" not in record.detail
    assert record.payload.endswith("\\xff\\u0000")
    (record,) = parse_payload(message([_good(ts="\u0000")]), gateway_id=GW, resolve=resolve).rejects
    assert "\x00" not in record.payload and "\x00" not in record.detail
    assert "\\u0000" in record.payload


def test_huge_raw_payloads_are_cut_short() -> None:
    payload = b"x" * (MAX_QUARANTINED_BYTES + 10)
    text = raw_text(payload)
    assert text.startswith("x" * 1000) and text.endswith(
        f"[truncated: {len(payload)} bytes in all]"
    )
    assert len(text) < MAX_QUARANTINED_BYTES + 100


def test_elements_sharing_a_timestamp_are_each_checked() -> None:
    elements = [
        {"channel": 1, "ts": TS, "energy": 1.0},
        {"channel": 2, "ts": "2026-03-01T08:15:00", "energy": 2.0},  # no offset
        {"channel": 3, "ts": TS, "energy": 3.0},
        {"channel": 2, "ts": "2026-03-01T08:15:00", "energy": 4.0},
    ]
    parsed = parse_payload(message(elements), gateway_id=GW, resolve=resolve)
    assert [(r.meter_id, r.ts, r.energy) for r in parsed.readings] == [(101, T, 1.0), (103, T, 3.0)]
    assert [(r.reason, r.detail[:11]) for r in parsed.rejects] == [
        (Reason.NAIVE_TIMESTAMP, "readings[1]"),
        (Reason.NAIVE_TIMESTAMP, "readings[3]"),
    ]


PLAIN = [
    {"channel": 1, "ts": TS, "energy": 10.5, "power": 2},
    {"channel": 2, "ts": "2026-03-01T00:15:00Z", "energy": 7, "quality": 4},
    {"channel": 3, "ts": TS, "voltage_a": 230.1, "power_factor": -0.9, "extra": "x"},
]


@pytest.mark.parametrize(
    "odd",
    [
        {"channel": 9, "ts": TS, "energy": 1.0},  # no meter on the channel
        {"channel": 1, "ts": TS},  # no value
        {"channel": 1, "ts": TS, "energy": "1.0"},
        {"channel": 1, "ts": TS, "energy": True},
        {"channel": "1", "ts": TS, "energy": 1.0},
        {"channel": 1, "ts": "2026-03-01T08:15:00", "energy": 1.0},
        {"channel": 1, "ts": 5, "energy": 1.0},
        {"channel": 1, "ts": TS, "energy": 1.0, "quality": 1.5},
        ["a", "list"],
    ],
)
def test_fast_and_careful_paths_agree(odd: object) -> None:
    """Plain elements take the fast path; one odd element sends the whole message down the
    careful path, which must give the plain elements the very same readings."""
    fast = parse_payload(message(PLAIN), gateway_id=GW, resolve=resolve)
    careful = parse_payload(message([*PLAIN, odd]), gateway_id=GW, resolve=resolve)
    assert fast.rejects == []
    assert careful.readings == fast.readings
    assert [type(r.energy) for r in fast.readings] == [float, float, type(None)]
    (reject,) = careful.rejects
    assert reject.detail.startswith("readings[3]")

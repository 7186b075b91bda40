"""The push feed's parsing, pure: the fast path and the careful path agree, and every
element ends as a reading or a rejection with its index."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from collectors.gridfeed.codec import FeedBody, feed_readings, split_body
from collectors.gridfeed.errors import FeedFormatError, FeedMediaTypeError
from collectors.gridfeed.meters import FeedResolver
from ingest.quarantine import Reason
from meterhub.reading import LOCAL_TZ, Reading

RESOLVER = FeedResolver("feed-a", {"M1": (1, "feed-a"), "M2": (2, "feed-a"), "X9": (9, "feed-b")})
TS = "2026-03-02T08:15:00+08:00"
WHEN = datetime(2026, 3, 2, 8, 15, tzinfo=LOCAL_TZ)


Parsed = tuple[list[tuple[int, Reading]], list[tuple[int, Reason]]]


def parse(body: bytes, media_type: str, *, first_index: int = 0) -> Parsed:
    feed = feed_readings(
        split_body(body, media_type), RESOLVER.ids, RESOLVER, source="s", first_index=first_index
    )
    readings = sorted(zip(feed.indices, feed.readings, strict=True))
    rejects = sorted((index, record.reason) for index, record in feed.rejects)
    return readings, rejects


def test_json_and_csv_give_the_same_readings() -> None:
    elements = [
        {"meter": "M1", "ts": TS, "energy": 10.5, "power": 2.0, "quality": 1},
        {"meter": "M2", "ts": TS, "energy": 11.0, "voltage_a": 230.1},
    ]
    csv_body = (
        "表号,抄表时间,正向有功总电量,有功功率,A相电压,质量\n"
        f"M1,{TS},10.5,2.0,,1\n"
        f"M2,{TS},11.0,,230.1,\n"
    ).encode()
    from_json = parse(orjson.dumps(elements), "application/json")
    from_csv = parse(csv_body, "text/csv")
    assert from_json == from_csv
    assert from_json[0] == [
        (0, Reading(1, WHEN, energy=10.5, power=2.0, quality=1, source="s")),
        (1, Reading(2, WHEN, energy=11.0, voltage_a=230.1, source="s")),
    ]


def test_odd_elements_take_the_careful_path_with_their_indices() -> None:
    elements = [
        {"meter": "M1", "ts": TS, "energy": 1.0},
        {"meter": "nope", "ts": TS, "energy": 1.0},
        {"meter": "X9", "ts": TS, "energy": 1.0},
        {"meter": "M1", "energy": 1.0},
        {"meter": "M1", "ts": "yesterday", "energy": 1.0},
        ["not", "an", "object"],
        {"meter": "M2", "ts": TS, "energy": 1.0, "quality": "high"},
        {"meter": "M2", "ts": TS, "energy": True},  # passed on: ingest quarantines its type
    ]
    readings, rejects = parse(orjson.dumps(elements), "application/json", first_index=100)
    assert [index for index, _ in readings] == [100, 107]
    assert rejects == [
        (101, Reason.UNKNOWN_METER),
        (102, Reason.NOT_IN_FEED),
        (103, Reason.MISSING_FIELD),
        (104, Reason.WRONG_TYPE),
        (105, Reason.WRONG_TYPE),
        (106, Reason.WRONG_TYPE),
    ]


def test_a_numeric_meter_code_still_resolves() -> None:
    resolver = FeedResolver("feed-a", {"330782": (5, "feed-a")})
    body = split_body(orjson.dumps([{"meter": 330782, "ts": TS, "energy": 3.0}]), "")
    feed = feed_readings(body, resolver.ids, resolver, source="s")
    assert [r.meter_id for r in feed.readings] == [5]


def test_short_and_malformed_csv_rows() -> None:
    body = (f"meter,ts,energy,power\nM1,{TS},5.0\nM2,{TS},abc,1\nM1,{TS},6.0,1.5\n").encode()
    readings, rejects = parse(body, "text/csv")
    assert readings == [
        (0, Reading(1, WHEN, energy=5.0, source="s")),
        (2, Reading(1, WHEN, energy=6.0, power=1.5, source="s")),
    ]
    assert rejects == [(1, Reason.WRONG_TYPE)]


def test_json_numbers_must_be_numbers_on_the_careful_path_too() -> None:
    # The meter code is a number, so the element takes the careful path: "12.5" (a
    # string) is refused there as the ingest path would refuse it on the fast one.
    resolver = FeedResolver("feed-a", {"7": (7, "feed-a")})
    body = split_body(orjson.dumps([{"meter": 7, "ts": TS, "energy": "12.5"}]), "")
    feed = feed_readings(body, resolver.ids, resolver, source="s")
    assert [record.reason for _, record in feed.rejects] == [Reason.WRONG_TYPE]


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b"{", "application/json", "malformed JSON"),
        (b'{"meter": "M1"}', "application/json", "JSON array"),
        (b"", "text/csv", "empty"),
        (b"a,b\n1,2\n", "text/csv", "meter column"),
        (b"x", "application/xml", "unsupported media type"),
    ],
)
def test_bodies_that_cannot_be_read_at_all(body: bytes, media_type: str, message: str) -> None:
    with pytest.raises(FeedFormatError, match=message) as raised:
        split_body(body, media_type)
    # the route tells a 415 from a 400 by class, never by the message
    assert isinstance(raised.value, FeedMediaTypeError) == (media_type == "application/xml")


def test_codes_of_a_body() -> None:
    assert FeedBody([{"meter": "A"}, {"meter": 12}, {"meter": True}, "x"]).codes() == {"A", "12"}
    assert FeedBody([["A", "t"], ["B"], []], ["meter", "ts"]).codes() == {"A", "B"}

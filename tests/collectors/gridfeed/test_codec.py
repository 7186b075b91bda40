"""The grid feed codec, pure: bytes + media type + encoding -> readings and rejections,
and each unreadable body a class of its own error tree (no HTTP, no database)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import datetime

import orjson
import pytest

from collectors.gridfeed.codec import feed_readings, split_body
from collectors.gridfeed.errors import FeedFormatError, FeedMediaTypeError, FeedTooLargeError
from collectors.gridfeed.meters import FeedResolver
from ingest.quarantine import Reason
from meterhub.reading import LOCAL_TZ, Reading

RESOLVER = FeedResolver("feed-a", {"M1": (1, "feed-a"), "X9": (9, "feed-b")})
TS = "2026-03-02T08:15:00+08:00"
WHEN = datetime(2026, 3, 2, 8, 15, tzinfo=LOCAL_TZ)
CSV = f"表号,抄表时间,正向有功总电量\nM1,{TS},7.25\nX9,{TS},1\nnope,{TS},1\n".encode()


def decode(
    data: bytes, media_type: str, encoding: str | None = None
) -> tuple[list[Reading], list[tuple[int, Reason]]]:
    body = split_body(data, media_type, encoding=encoding)
    out = feed_readings(body, RESOLVER.ids, RESOLVER, source="s")
    return out.readings, sorted((i, r.reason) for i, r in out.rejects)


@pytest.mark.parametrize("encoding", [None, "identity", "gzip"])
def test_a_csv_body_with_chinese_headers_in_any_encoding(encoding: str | None) -> None:
    data = gzip.compress(CSV) if encoding == "gzip" else CSV
    readings, rejects = decode(data, "text/csv", encoding)
    assert readings == [Reading(1, WHEN, energy=7.25, source="s")]
    assert rejects == [(1, Reason.NOT_IN_FEED), (2, Reason.UNKNOWN_METER)]


def test_gb18030_csv_and_ndjson_with_a_bad_line() -> None:
    readings, _ = decode(CSV.decode().encode("gb18030"), "text/csv")
    assert readings == [Reading(1, WHEN, energy=7.25, source="s")]
    ndjson = orjson.dumps({"meter": "M1", "ts": TS, "energy": 2.5}) + b"\n{oops\n\n"
    readings, rejects = decode(ndjson, "application/x-ndjson")
    assert readings == [Reading(1, WHEN, energy=2.5, source="s")]
    assert rejects == [(1, Reason.MALFORMED_PAYLOAD)]


def test_the_size_limit_applies_to_the_inflated_body() -> None:
    data = b"[" + b" " * 1000 + b"]"
    assert split_body(data, "application/json", limit=1002).items == []
    with pytest.raises(FeedTooLargeError) as too_large:
        split_body(gzip.compress(data), "application/json", encoding="gzip", limit=1001)
    assert too_large.value.extra == {"limit": 1001}
    with pytest.raises(FeedTooLargeError):
        split_body(data, "application/json", limit=1001)


@pytest.mark.parametrize(
    ("data", "media_type", "encoding", "error", "code"),
    [
        (b"\x1f\x8b\x08garbage", "application/json", "gzip", FeedFormatError, "feed_format"),
        (b"[]", "application/json", "br", FeedMediaTypeError, "unsupported_media_type"),
        (b"[]", "application/xml", None, FeedMediaTypeError, "unsupported_media_type"),
        (b"\xff\xfe\x00", "text/csv", None, FeedFormatError, "feed_format"),
    ],
)
def test_unreadable_bodies_are_typed_errors(
    data: bytes, media_type: str, encoding: str | None, error: type[FeedFormatError], code: str
) -> None:
    with pytest.raises(error) as caught:
        split_body(data, media_type, encoding=encoding)
    assert type(caught.value) is error and caught.value.code == code


def test_the_codec_imports_neither_the_api_nor_fastapi() -> None:
    check = (
        "import sys, collectors.gridfeed.codec, collectors.gridfeed.meters; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('api', 'fastapi', 'starlette')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_gzip_body_cut_short_is_refused_whole(keep: float) -> None:
    rows = [{"meter": "M1", "ts": TS, "energy": 1980.0 + i} for i in range(400)]
    whole = gzip.compress(orjson.dumps(rows))
    cut = whole[: int(len(whole) * keep)]
    with pytest.raises(FeedFormatError, match="truncated") as refused:
        split_body(cut, "application/json", encoding="gzip")
    assert type(refused.value) is FeedFormatError
    csv = gzip.compress(CSV * 50)
    with pytest.raises(FeedFormatError, match="truncated"):
        split_body(csv[: len(csv) - 4], "text/csv", encoding="gzip")  # only the length gone


def test_concatenated_gzip_members_are_one_body() -> None:
    first, second = b"[" + orjson.dumps({"meter": "M1", "ts": TS, "energy": 1})[:-1], b"}]"
    body = split_body(gzip.compress(first) + gzip.compress(second), "", encoding="gzip")
    assert body.items == [{"meter": "M1", "ts": TS, "energy": 1}]

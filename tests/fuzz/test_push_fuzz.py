"""The push feed under hypothesis: JSON, NDJSON and CSV bodies (UTF-8 and GBK), gzip or not,
whole or cut, of good and bad readings. Through the codec: the body is refused as a whole
(a `FeedFormatError`) or every element becomes exactly one reading or one rejection; a cut
gzip body is always refused. Through the HTTP route of a real `meterhub serve`: every body
is answered 202 or a problem+json 4xx, never a 5xx; after a 202 exactly ``accepted`` rows
are stored, after a 4xx none (nothing half-stored)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import itertools
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.gridfeed.codec import FeedBody, feed_readings, split_body
from collectors.gridfeed.errors import FeedFormatError
from ingest.quarantine import Reason
from meterhub.reading import LOCAL_TZ
from tests.fuzz.conftest import FEED_METERS, LiveApi

QUICK = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
SOAK = settings(
    max_examples=1_500, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
CODEC_QUICK = settings(max_examples=300, deadline=None, database=None)
CODEC_SOAK = settings(max_examples=10_000, deadline=None, database=None)

CODES = [f"fuzz-{n}" for n in range(FEED_METERS)]
T0 = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)
_windows = itertools.count()  # each HTTP example its own hour: its rows are countable

values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1e6),
    st.integers(-(2**70), 2**70),
    st.sampled_from(["1980.0", "", "abc", "1e400", True]),
)
stamps = st.one_of(
    st.integers(0, 59).map(lambda m: ("offset", m)),  # a minute of the example's own hour
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "2026-03-02T08:15:00",  # no UTC offset
            "not a time",
            "2026-02-30T00:00:00+08:00",
            "",
        ]
    ),
)
meters = st.one_of(st.sampled_from(CODES), st.sampled_from(["NOPE", "", "表号", "x\x00y"]))


@st.composite
def elements(draw: st.DrawFn) -> dict[str, Any]:
    element: dict[str, Any] = {"meter": draw(meters), "ts": draw(stamps)}
    for name in draw(st.sets(st.sampled_from(["energy", "power", "voltage_a", "bogus"]))):
        element[name] = draw(values)
    if draw(st.booleans()):
        element.pop(draw(st.sampled_from(["meter", "ts"])))
    return element


@dataclass(frozen=True)
class Body:
    media_type: str
    charset: str
    gzipped: bool
    cut: bool
    data: bytes


def _stamp(ts: Any, base: datetime) -> Any:
    if isinstance(ts, tuple):
        return (base + timedelta(minutes=ts[1])).isoformat()
    return ts


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: such a value is sent as its text (a wrong type)."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def encode(items: list[dict[str, Any]], media_type: str, charset: str) -> bytes:
    plain = [{k: _json_value(v) for k, v in item.items()} for item in items]
    if media_type == "application/json":
        text = json.dumps(plain, ensure_ascii=False)  # integers beyond 64 bits too
    elif media_type == "application/x-ndjson":
        text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in plain)
    else:
        out = io.StringIO()
        names = ["meter", "ts", "energy", "power", "voltage_a", "bogus"]
        header = ["表号", "抄表时间", "正向有功总电量", "有功功率", "A相电压", "bogus"]
        writer = csv.writer(out)
        writer.writerow(header)
        for item in items:
            writer.writerow([_cell(item.get(n)) for n in names])
        text = out.getvalue()
    return text.encode(charset, "replace")


@st.composite
def bodies(draw: st.DrawFn, *, base: datetime) -> tuple[Body, int]:
    items = [
        {**e, "ts": _stamp(e["ts"], base)} if "ts" in e else e
        for e in draw(st.lists(elements(), max_size=15))
    ]
    media_type = draw(st.sampled_from(["application/json", "application/x-ndjson", "text/csv"]))
    charset = draw(st.sampled_from(["utf-8", "gbk"]))
    data = encode(items, media_type, charset)
    gzipped, cut = draw(st.booleans()), draw(st.booleans())
    if gzipped:
        data = gzip.compress(data)
    if cut and len(data) > 1:
        # The cut point is drawn without depending on the body's length: the HTTP test's
        # base hour moves per example, which changes the gzip length, and hypothesis
        # replays a draw only if its bounds are the same.
        data = data[: 1 + draw(st.integers(0, 2**20)) % (len(data) - 1)]
    else:
        cut = False
    return Body(media_type, charset, gzipped, cut, data), len(items)


def _split(body: Body) -> FeedBody:
    return split_body(body.data, body.media_type, encoding="gzip" if body.gzipped else None)


def _check_codec(body: Body) -> None:
    try:
        feed_body = _split(body)
    except FeedFormatError:
        return  # refused whole, with a message: fine
    assert not (body.gzipped and body.cut), "a cut gzip body was read"
    ids = {code: n for n, code in enumerate(CODES, start=1)}

    def resolve(code: str) -> int | Reason:
        return ids.get(code, Reason.UNKNOWN_METER)

    out = feed_readings(feed_body, ids, resolve, source="grid:fuzz")
    seen = sorted([*out.indices, *(i for i, _ in out.rejects)])
    assert seen == list(range(len(feed_body.items))), "an element lost or doubled"
    for _, record in out.rejects:
        assert record.reason and record.detail


@CODEC_QUICK
@given(bodies(base=T0))
def test_every_element_is_a_reading_or_a_rejection(drawn: tuple[Body, int]) -> None:
    _check_codec(drawn[0])


@pytest.mark.slow
@CODEC_SOAK
@given(bodies(base=T0))
def test_codec_soak(drawn: tuple[Body, int]) -> None:
    _check_codec(drawn[0])


async def _stored(dsn: str, start: datetime) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id "
            "WHERE m.code = ANY($1::text[]) AND r.ts >= $2 AND r.ts < $2 + interval '1 hour'",
            CODES,
            start,
        )
        return count
    finally:
        await conn.close()


def _push_and_count(live: LiveApi, http: httpx.Client, data: st.DataObject) -> None:
    base = T0 + timedelta(hours=next(_windows))
    body, _ = data.draw(bodies(base=base))
    headers = {"X-API-Key": live.keys["grid"], "Content-Type": body.media_type}
    if body.gzipped:
        headers["Content-Encoding"] = "gzip"
    response = http.post("/v1/readings", content=body.data, headers=headers)
    stored = asyncio.run(_stored(live.dsn, base))
    assert response.status_code < 500, response.text
    if response.status_code == 202:
        answer = response.json()
        parts = ("accepted", "duplicates", "conflicts", "rejected")
        assert answer["received"] == sum(answer[k] for k in parts), answer
        assert stored == answer["accepted"], (answer, stored)
        assert not (body.gzipped and body.cut)
        assert all(r["reason"] for r in answer["rejections"])
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
        assert stored == 0, f"{stored} rows stored from a refused body"


@pytest.mark.integration
@QUICK
@given(data=st.data())
def test_pushed_bodies_are_stored_whole_or_refused(live_api: LiveApi, data: st.DataObject) -> None:
    with httpx.Client(base_url=live_api.url, timeout=30) as http:
        _push_and_count(live_api, http, data)


@pytest.mark.integration
@pytest.mark.slow
@SOAK
@given(data=st.data())
def test_push_soak(live_api: LiveApi, data: st.DataObject) -> None:
    with httpx.Client(base_url=live_api.url, timeout=30) as http:
        _push_and_count(live_api, http, data)


def _sent(live: LiveApi, http: httpx.Client, body: bytes) -> httpx.Response:
    headers = {
        "X-API-Key": live.keys["grid"],
        "Content-Type": "text/csv",
        "Content-Encoding": "gzip",
    }
    return http.post("/v1/readings", content=body, headers=headers)


@pytest.mark.integration
def test_the_fuzzer_can_store_and_can_refuse(live_api: LiveApi) -> None:
    """The two outcomes the property tells apart, each for sure: a whole gzip CSV is stored
    row for row, the same body cut in half is refused and stores nothing."""
    base = T0 + timedelta(hours=next(_windows))
    items = [
        {"meter": code, "ts": _stamp(("offset", m), base), "energy": 1980.0 + m}
        for m in range(10)
        for code in CODES
    ]
    whole = gzip.compress(encode(items, "text/csv", "gbk"))
    with httpx.Client(base_url=live_api.url, timeout=30) as http:
        cut = _sent(live_api, http, whole[: len(whole) // 2])
        assert cut.status_code == 400 and "truncated" in cut.json()["detail"]
        assert asyncio.run(_stored(live_api.dsn, base)) == 0
        stored = _sent(live_api, http, whole)
        assert stored.status_code == 202 and stored.json()["accepted"] == len(items)
        assert asyncio.run(_stored(live_api.dsn, base)) == len(items)

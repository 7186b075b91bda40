"""The grid push feed: exact counts, idempotence, formats, limits, scope."""

from __future__ import annotations

import asyncio
import gzip
import uuid

import asyncpg
import httpx
import orjson
import pytest

from api.app import create_app
from collectors.gridfeed.codec import MAX_BODY_BYTES
from meterhub.settings import Settings
from tests.api.conftest import FEED, OTHER_FEED, Keys
from tests.ingest.conftest import create_meters

pytestmark = pytest.mark.integration


async def feed_meters(db: asyncpg.Connection, count: int, feed: str = FEED) -> list[str]:
    ids = await create_meters(db, count)
    codes = [f"{feed}-{uuid.uuid4().hex[:8]}" for _ in ids]
    for meter_id, code in zip(ids, codes, strict=True):
        await db.execute(
            "UPDATE meters SET code = $2, address = jsonb_build_object('feed', $3::text) "
            "WHERE id = $1",
            meter_id,
            code,
            feed,
        )
    return codes


def rows(code: str, n: int, *, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "meter": code,
            "ts": f"2026-03-02T{8 + (start + i) // 4:02d}:{(start + i) % 4 * 15:02d}:00+08:00",
            "energy": 100.0 + start + i,
            "power": 12.5,
        }
        for i in range(n)
    ]


async def push(client: httpx.AsyncClient, keys: Keys, body: object) -> httpx.Response:
    headers = {**keys.headers("grid"), "Content-Type": "application/json"}
    return await client.post("/v1/readings", content=orjson.dumps(body), headers=headers)


async def test_mixed_batch_gives_exact_counts(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    (foreign,) = await feed_meters(db, 1, OTHER_FEED)
    body: list[object] = [
        *rows(code, 10),
        {"meter": code, "ts": "not a time", "energy": 1},
        {"meter": code, "energy": 1},
        {"meter": "nope-000", "ts": "2026-03-02T08:00:00+08:00", "energy": 1},
        {"meter": foreign, "ts": "2026-03-02T08:00:00+08:00", "energy": 1},
        {"meter": code, "ts": "2026-03-02T20:00:00+08:00", "energy": -4},
        "just a string",
        {"meter": code, "ts": "2026-03-02T21:00:00+08:00", "energy": "12.5", "power": True},
    ]
    before = await db.fetchval("SELECT count(*) FROM quarantine")
    response = await push(client, keys, body)
    assert response.status_code == 202, response.text
    result = response.json()
    assert (result["received"], result["accepted"], result["rejected"]) == (17, 10, 7)
    assert [(r["index"], r["reason"]) for r in result["rejections"]] == [
        (10, "wrong_type"),
        (11, "missing_field"),
        (12, "unknown_meter"),
        (13, "not_in_feed"),
        (14, "negative_value"),
        (15, "wrong_type"),
        (16, "wrong_type"),
    ]
    stored = await db.fetchval(
        "SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id WHERE m.code = $1",
        code,
    )
    assert stored == 10
    quarantined = await db.fetch(
        "SELECT reason, source FROM quarantine ORDER BY id OFFSET $1", before
    )
    assert sorted(r["reason"] for r in quarantined) == sorted(
        r["reason"] for r in result["rejections"]
    )
    assert {r["source"] for r in quarantined} == {f"grid:{FEED}"}


async def test_repush_is_idempotent(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    body = rows(code, 20)
    first = (await push(client, keys, body)).json()
    second = (await push(client, keys, body)).json()
    assert (first["accepted"], first["duplicates"]) == (20, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 20)


async def test_ndjson_csv_with_chinese_headers_and_gzip(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    ndjson = b"\n".join(orjson.dumps(r) for r in rows(code, 3)) + b"\n{broken\n"
    response = await client.post(
        "/v1/readings",
        content=ndjson,
        headers={**keys.headers("grid"), "Content-Type": "application/x-ndjson"},
    )
    assert response.json()["accepted"] == 3
    assert [r["reason"] for r in response.json()["rejections"]] == ["malformed_payload"]

    csv_text = "\ufeff表号,抄表时间,正向有功总电量,有功功率\n" + "".join(
        f"{code},2026-03-02T{10 + i:02d}:00:00+08:00,{200 + i},5.5\n" for i in range(4)
    )
    response = await client.post(
        "/v1/readings",
        content=gzip.compress(csv_text.encode()),
        headers={
            **keys.headers("grid"),
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 4
    energy = await db.fetchval(
        "SELECT energy FROM readings r JOIN meters m ON m.id = r.meter_id "
        "WHERE m.code = $1 AND r.ts = '2026-03-02T12:00:00+08:00'",
        code,
    )
    assert energy == 202.0


async def test_malformed_and_oversized_bodies(client: httpx.AsyncClient, keys: Keys) -> None:
    bad = await client.post(
        "/v1/readings",
        content=b"[{",
        headers={**keys.headers("grid"), "Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["type"] == "/problems/invalid_body"
    not_array = await client.post(
        "/v1/readings",
        content=b'{"a": 1}',
        headers={**keys.headers("grid"), "Content-Type": "application/json"},
    )
    assert not_array.status_code == 400
    xml = await client.post(
        "/v1/readings",
        content=b"<r/>",
        headers={**keys.headers("grid"), "Content-Type": "application/xml"},
    )
    assert xml.status_code == 415
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]")
    big = await client.post(
        "/v1/readings",
        content=bomb,
        headers={
            **keys.headers("grid"),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert big.status_code == 413
    assert big.json()["type"] == "/problems/payload_too_large"


async def test_only_grid_keys_push(client: httpx.AsyncClient, keys: Keys) -> None:
    for role, status in (("bureau", 403), ("town", 403), ("field", 403), ("admin", 403)):
        response = await client.post(
            "/v1/readings",
            content=b"[]",
            headers={**keys.headers(role), "Content-Type": "application/json"},
        )
        assert response.status_code == status, role
    anonymous = await client.post("/v1/readings", content=b"[]")
    assert anonymous.status_code == 401
    wrong = await client.post(
        "/v1/readings", content=b"[]", headers={"X-API-Key": "mh_00000000_" + "x" * 32}
    )
    assert wrong.status_code == 401


async def test_a_full_queue_answers_503_with_retry_after(
    api_settings: Settings, keys: Keys, db: asyncpg.Connection
) -> None:
    """With room for one request's readings, concurrent pushes beyond it are told to retry;
    nothing they carried is stored or lost silently: each answer says what happened."""
    (code,) = await feed_meters(db, 1)
    tight = api_settings.model_copy(update={"queue_max": 1})
    app = create_app(tight)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        headers = {**keys.headers("grid"), "Content-Type": "application/json"}
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/readings",
                    content=orjson.dumps(rows(code, 4, start=4 * i)),
                    headers=headers,
                )
                for i in range(8)
            )
        )
    busy = [r for r in responses if r.status_code == 503]
    done = [r for r in responses if r.status_code == 202]
    assert busy and done and len(busy) + len(done) == 8
    assert all(r.headers["Retry-After"] == "2" for r in busy)
    assert all(r.json()["type"] == "/problems/busy" for r in busy)
    stored = await db.fetchval(
        "SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id WHERE m.code = $1",
        code,
    )
    assert stored == sum(r.json()["accepted"] for r in done) == 4 * len(done)


async def test_a_replaced_meter_refuses_pushes_after_the_swap_at_once(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    before = {"meter": code, "ts": "2026-03-02T08:00:00+08:00", "energy": 1.0}
    assert (await push(client, keys, [before])).json()["accepted"] == 1  # registry now cached
    meter_id = await db.fetchval("SELECT id FROM meters WHERE code = $1", code)
    swap = await client.post(
        f"/v1/meters/{meter_id}/replace",
        json={"code": code + "-b", "at": "2026-03-02T09:00:00+08:00"},
        headers=keys.headers("field"),
    )
    assert swap.status_code == 201, swap.text
    after = {"meter": code, "ts": "2026-03-02T09:15:00+08:00", "energy": 2.0}
    result = (await push(client, keys, [after])).json()
    assert [r["reason"] for r in result["rejections"]] == ["after_removal"]


async def test_a_nul_in_a_meter_code_is_an_unknown_meter_not_an_error(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    body = [*rows(code, 2), {"meter": "a\u0000b", "ts": "2026-03-02T08:00:00+08:00", "energy": 1}]
    response = await push(client, keys, body)
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in result["rejections"]] == [(2, "unknown_meter")]

"""The push feed against bad input: nothing half-stored, every element stored or refused
with a reason, and one client's bad element never fails another client's batch."""

from __future__ import annotations

import asyncio
import gzip

import asyncpg
import httpx
import orjson
import pytest

from tests.api.conftest import Keys
from tests.api.test_push import feed_meters, push, rows

pytestmark = pytest.mark.integration


async def _stored(db: asyncpg.Connection, code: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM readings "
            "WHERE meter_id = (SELECT id FROM meters WHERE code = $1)",
            code,
        )
    )


async def test_a_gzip_body_cut_in_half_is_refused_whole(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    whole = gzip.compress(orjson.dumps(rows(code, 40)))
    response = await client.post(
        "/v1/readings",
        content=whole[: len(whole) // 2],
        headers={
            **keys.headers("grid"),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "truncated" in response.json()["detail"]
    assert await _stored(db, code) == 0


async def test_a_reading_without_values_is_refused_and_does_not_block_the_real_one(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    ts = "2026-03-02T08:00:00+08:00"
    empty = await push(
        client, keys, [{"meter": code, "ts": ts}, {"meter": code, "ts": ts, "energy": None}]
    )
    assert empty.status_code == 202, empty.text
    assert empty.json()["accepted"] == 0
    assert [r["reason"] for r in empty.json()["rejections"]] == ["no_values", "no_values"]
    real = await push(client, keys, [{"meter": code, "ts": ts, "energy": 12.5}])
    assert (real.json()["accepted"], real.json()["conflicts"]) == (1, 0)
    quarantined = await db.fetchval(
        "SELECT count(*) FROM quarantine WHERE reason = 'no_values' "
        "AND meter_id = (SELECT id FROM meters WHERE code = $1)",
        code,
    )
    assert quarantined == 2


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+00:00"]
)
async def test_timestamps_at_the_ends_of_time_are_refused_per_element(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection, ts: str
) -> None:
    (code,) = await feed_meters(db, 1)
    bad = [{"meter": "NOPE", "ts": ts, "energy": 1}, {"meter": code, "ts": ts, "energy": 1}]
    goods = [await feed_meters(db, 1) for _ in range(6)]
    answers = await asyncio.gather(
        push(client, keys, bad), *(push(client, keys, rows(c, 4)) for (c,) in goods)
    )
    assert [a.status_code for a in answers] == [202] * 7, [a.text for a in answers]
    assert answers[0].json()["accepted"] == 0
    assert answers[0].json()["rejected"] == 2
    assert all(a.json()["accepted"] == 4 for a in answers[1:])
    for (c,) in goods:
        assert await _stored(db, c) == 4


async def test_unknown_columns_and_keys_are_reported_as_warnings(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    csv_text = f"meter,ts,energy,enrgy_peak,备注\n{code},2026-03-02T08:00:00+08:00,1,2,x\n"
    response = await client.post(
        "/v1/readings",
        content=csv_text.encode(),
        headers={**keys.headers("grid"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(w["code"], w["field"]) for w in answer["warnings"]] == [
        ("unknown_field", "enrgy_peak"),
        ("unknown_field", "备注"),
    ]
    assert "not stored" in answer["warnings"][0]["detail"]
    clean = await push(client, keys, rows(code, 1, start=4))
    assert clean.json()["warnings"] == []
    typo = await push(client, keys, [{**rows(code, 1, start=5)[0], "pwer": 3}])
    assert [w["field"] for w in typo.json()["warnings"]] == ["pwer"]

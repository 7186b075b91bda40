"""Bodies have documented limits and heavy parsing leaves the event loop; the push quota per
key; a clear message for a bad DL/T 645 address; export file names that echo nothing."""

from __future__ import annotations

import asyncio
import string
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from api import bodies
from api.formats import disposition
from api.quota import PushQuota, QuotaExceededError
from meterhub.settings import Settings
from tests.api.conftest import Keys
from tests.api.test_push import feed_meters, rows
from tests.support import in_process_api

CSV = {"Content-Type": "text/csv"}


async def test_small_work_stays_on_the_loop_large_goes_to_a_parsing_thread() -> None:
    def where() -> str:
        return threading.current_thread().name

    assert await bodies.off_loop(where, size=bodies.INLINE_BYTES) == where()
    assert (await bodies.off_loop(where, size=bodies.INLINE_BYTES + 1)).startswith("meterhub-parse")


async def test_the_loop_keeps_ticking_while_a_large_body_is_parsed() -> None:
    """A 50 ms ticker goes on while 0.5 s of parsing runs off the loop (on the loop it
    would stall for the whole parse)."""

    def parse() -> int:
        deadline = time.perf_counter() + 0.5
        n = 0
        while time.perf_counter() < deadline:
            n += len(orjson.loads(b"[1,2,3]"))
        return n

    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        for _ in range(8):
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await bodies.off_loop(parse, size=bodies.INLINE_BYTES * 10)
    await ticker
    assert max(gaps) < 0.4, gaps


def test_a_bucket_refills_at_its_rate_and_holds_at_most_its_burst() -> None:
    now = [0.0]
    quota = PushQuota(rate=10, burst=30, clock=lambda: now[0])
    quota.take(1, 30)
    with pytest.raises(QuotaExceededError) as refused:
        quota.take(1, 5)
    assert refused.value.retry_after == 1  # 5 tokens at 10/s: within a second
    quota.take(2, 30)  # another key: its own bucket
    now[0] = 0.5
    quota.take(1, 5)
    with pytest.raises(QuotaExceededError):
        quota.check(1)  # empty: refused before any body is read
    now[0] = 100.0
    quota.take(1, 10_000)  # larger than the burst: takes a full bucket
    with pytest.raises(QuotaExceededError) as waiting:
        quota.take(1, 30)
    assert waiting.value.retry_after == 3
    PushQuota(rate=0, burst=1).take(1, 10**9)  # 0: no quota


@pytest.fixture
async def limited(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(
        update={
            "spool_dir": tmp_path / "spool",
            "batch_max_age": 0.02,
            "push_rate_per_key": 1.0,
            "push_burst": 4,
        }
    )
    async with in_process_api(limited) as http:
        yield http


@pytest.mark.integration
async def test_a_key_past_its_quota_gets_429_and_nothing_is_stored(
    limited: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (code,) = await feed_meters(db, 1)
    headers = {**keys.headers("grid"), "Content-Type": "application/json"}
    first = await limited.post("/v1/readings", content=orjson.dumps(rows(code, 4)), headers=headers)
    assert first.status_code == 202 and first.json()["accepted"] == 4
    again = await limited.post(
        "/v1/readings", content=orjson.dumps(rows(code, 3, start=4)), headers=headers
    )
    assert again.status_code == 429
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "/problems/too_many_requests"
    assert 1 <= int(again.headers["Retry-After"]) <= 4
    stored = await db.fetchval(
        "SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id WHERE m.code = $1",
        code,
    )
    assert stored == 4
    other = await limited.post(  # another grid key has its own bucket
        "/v1/readings",
        content=b"[]",
        headers={**keys.headers("other_grid"), "Content-Type": "application/json"},
    )
    assert other.status_code == 202


@pytest.mark.integration
async def test_an_import_takes_only_sheets_and_at_most_the_limit(
    client: httpx.AsyncClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "/v1/reference/holidays/import"
    as_json = await client.post(url, json=[{"day": "2030-01-01"}], headers=keys.headers("bureau"))
    assert as_json.status_code == 415
    assert "text/csv" in as_json.json()["detail"]
    assert "text/csv" in as_json.json()["accepted"]
    monkeypatch.setattr("api.routes.sheets.MAX_SHEET_BYTES", 64)
    big = await client.post(url, content=b"x" * 65, headers=CSV | keys.headers("bureau"))
    assert big.status_code == 413 and big.json()["limit"] == 64
    denied = await client.post(url, content=b"x" * 65, headers=CSV | keys.headers("town"))
    assert denied.status_code == 403  # the key first, then the body


@pytest.mark.integration
async def test_a_push_past_the_limit_is_refused_as_it_streams(
    client: httpx.AsyncClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.routes.readings.MAX_BODY_BYTES", 100)
    response = await client.post(
        "/v1/readings",
        content=b"[" + b" " * 200 + b"]",
        headers={**keys.headers("grid"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["limit"] == 100


@pytest.mark.integration
async def test_a_bad_dlt645_address_is_a_clear_422(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await db.fetchval("SELECT min(id) FROM firms")
    if firm is None:
        (meter,) = await feed_meters(db, 1)
        firm = await db.fetchval("SELECT firm_id FROM meters WHERE code = $1", meter)
    body = {
        "firm_id": firm,
        "code": "dlt-bad-address",
        "protocol": "dlt645",
        "address": {"address": "12345", "bus": "tcp://127.0.0.1:8899"},
        "installed_at": "2026-01-01T00:00:00+08:00",
    }
    response = await client.post("/v1/meters", json=body, headers=keys.headers("bureau"))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "12-digit" in detail and "'12345'" in detail
    assert "constraint" not in detail and "violates" not in detail


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", 'a"; filename="evil.sh', "x\r\nSet-Cookie: y", "..", "趋势-城区"]
)
def test_export_file_names_never_carry_a_path_a_quote_or_a_header(name: str) -> None:
    value = disposition(name)
    assert "/" not in value.split("filename*=")[0] and "\r" not in value and "\n" not in value
    ascii_name = value.split('filename="')[1].split('"')[0]
    assert ascii_name and ".." not in ascii_name and not ascii_name.startswith(".")
    assert set(ascii_name) <= set(string.ascii_letters + string.digits + "._-")
    assert "%2F" not in value and "%22" not in value

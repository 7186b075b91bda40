"""The bad-input table of RELIABILITY.md, case by case against a real `meterhub serve`:
each case's status (and problem type), never a 5xx. Rerun:

    .venv/bin/pytest tests/fuzz/test_bad_input_table.py -v
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from collectors.gridfeed.codec import MAX_BODY_BYTES
from tests.fuzz.conftest import LiveApi

pytestmark = pytest.mark.integration

CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
GOOD_ROW = "fuzz-0,2026-03-02T08:15:00+08:00,1980.0\n"


@dataclass(frozen=True)
class Case:
    name: str
    role: str
    send: Callable[[httpx.Client, dict[str, Any]], httpx.Response]
    status: int
    problem: str | None = None  # the problem type's code, for a 4xx


def _cut_gzip() -> bytes:
    whole = gzip.compress(("meter,ts,energy\n" + GOOD_ROW * 400).encode())
    return whole[: len(whole) // 2]


CASES = [
    Case(
        "push: a reading in year 1 (+14:00)",
        "grid",
        lambda h, f: h.post(
            "/v1/readings",
            json=[{"meter": "NOPE", "ts": "0001-01-01T00:00:00+14:00", "energy": 1}],
        ),
        202,
    ),
    Case(
        "push: a reading with no values",
        "grid",
        lambda h, f: h.post(
            "/v1/readings", json=[{"meter": "fuzz-0", "ts": "2026-03-02T08:15:00+08:00"}]
        ),
        202,
    ),
    Case(
        "push: gzip body cut in half",
        "grid",
        lambda h, f: h.post(
            "/v1/readings",
            content=_cut_gzip(),
            headers=CSV | {"Content-Encoding": "gzip"},
        ),
        400,
        "invalid_body",
    ),
    Case(
        "push: gzip bomb past 64 MiB decompressed",
        "grid",
        lambda h, f: h.post(
            "/v1/readings",
            content=gzip.compress(b"[" + b" " * (MAX_BODY_BYTES + 1) + b"]"),
            headers=JSON | {"Content-Encoding": "gzip"},
        ),
        413,
        "payload_too_large",
    ),
    Case(
        "push: XML body",
        "grid",
        lambda h, f: h.post(
            "/v1/readings", content=b"<r/>", headers={"Content-Type": "application/xml"}
        ),
        415,
        "unsupported_media_type",
    ),
    Case(
        "push: a malformed body from a bureau key (authorise first)",
        "bureau",
        lambda h, f: h.post("/v1/readings", content=b"{not json", headers=JSON),
        403,
        "forbidden",
    ),
    Case(
        "push: CSV with a CR inside an unquoted cell",
        "grid",
        lambda h, f: h.post("/v1/readings", content=b"meter,ts\n\ra,b\rc\n", headers=CSV),
        202,
    ),
    Case(
        "query: NUL in a text parameter",
        "bureau",
        lambda h, f: h.get("/v1/firms", params={"industry": "\u00ee\x00x"}),
        422,
        "invalid_request",
    ),
    Case(
        "query: an offset beyond 64 bits",
        "bureau",
        lambda h, f: h.get("/v1/meters", params={"offset": "10130387227139612912522027335680"}),
        422,
        "invalid_request",
    ),
    Case(
        "query: a typo'd parameter (granulartiy)",
        "bureau",
        lambda h, f: h.get(
            "/v1/trends/series",
            params={
                "scope": "city",
                "start": "2026-01-01",
                "end": "2026-02-01",
                "granulartiy": "week",
            },
        ),
        422,
        "invalid_request",
    ),
    Case(
        "query: a trend in year 953",
        "bureau",
        lambda h, f: h.get("/v1/trends/top", params={"start": "0953-12-01", "end": "2026-04-01"}),
        422,
        "invalid_request",
    ),
    Case(
        "query: campaign week 0001-01-01",
        "bureau",
        lambda h, f: h.get("/v1/campaign", params={"week": "0001-01-01"}),
        422,
        "invalid_request",
    ),
    Case(
        "query: /v1/meters?firm_id=0",
        "bureau",
        lambda h, f: h.get("/v1/meters", params={"firm_id": 0}),
        404,
        "not_found",
    ),
    Case(
        "path: a grid-factor year beyond int32",
        "bureau",
        lambda h, f: h.delete("/v1/reference/grid-factors/5321632952/zhejiang/average"),
        422,
        "invalid_request",
    ),
    Case(
        "path: an intensity month of ../../x (no file name echoes it)",
        "bureau",
        lambda h, f: h.get("/v1/trends/intensity", params={"month": "../../x", "format": "csv"}),
        422,
        "invalid_request",
    ),
    Case(
        "body: land_mu 1e308",
        "bureau",
        lambda h, f: h.patch(f"/v1/firms/{f['firm']}", json={"land_mu": 1e308}),
        422,
        "invalid_request",
    ),
    Case(
        "body: PATCH a firm with industry null",
        "bureau",
        lambda h, f: h.patch(f"/v1/firms/{f['firm']}", json={"industry": None}),
        422,
        "invalid_request",
    ),
    Case(
        "body: not JSON at all, to a JSON route",
        "bureau",
        lambda h, f: h.post("/v1/firms", content=b"\xff{", headers=JSON),
        400,
        "invalid_body",
    ),
    Case(
        "body: a DL/T 645 address of 5 digits",
        "bureau",
        lambda h, f: h.post(
            "/v1/meters",
            json={
                "firm_id": f["firm"],
                "code": "bad-dlt645",
                "protocol": "dlt645",
                "address": {"address": "12345", "bus": "tcp://127.0.0.1:8899"},
                "installed_at": "2026-01-01T00:00:00+08:00",
            },
        ),
        422,
        "invalid_request",
    ),
    Case(
        "body: a Modbus meter at 127.0.0.2 (outside MHUB_COLLECT_NETWORKS=127.0.0.1/32)",
        "field",
        lambda h, f: h.post(
            "/v1/meters",
            json={
                "firm_id": f["firm"],
                "code": "ssrf-modbus",
                "protocol": "modbus",
                "address": {"host": "127.0.0.2", "port": 502, "unit_id": 1},
                "installed_at": "2026-01-01T00:00:00+08:00",
            },
        ),
        422,
        "address_not_allowed",
    ),
    Case(
        "body: a meter address holding an integer beyond 64 bits",
        "bureau",
        lambda h, f: h.post(
            "/v1/meters",
            json={
                "firm_id": f["firm"],
                "code": "big-int-address",
                "protocol": "grid-feed",
                "address": {"feed": "x", "n": 2**70},
                "installed_at": "2026-01-01T00:00:00+08:00",
            },
        ),
        422,
        "invalid_request",
    ),
    Case(
        "body: an evaluation run with a NUL in the scheme",
        "bureau",
        lambda h, f: h.post("/v1/evaluations/run", json={"year": 2025, "scheme": "a\x00"}),
        422,
        "invalid_request",
    ),
    Case(
        "import: a JSON body",
        "bureau",
        lambda h, f: h.post("/v1/firms/import", json=[{"credit_code": "x"}]),
        415,
        "unsupported_media_type",
    ),
    Case(
        "import: a sheet with a bad row",
        "bureau",
        lambda h, f: h.post(
            "/v1/reference/holidays/import",
            content="日期,类型,名称,来源\n2299-01-01,holiday,元旦,test\n2299-02-30,holiday,x,test\n".encode(),
            headers=CSV,
        ),
        422,
        "invalid_rows",
    ),
    Case(
        "import: the same sheet with partial=true",
        "bureau",
        lambda h, f: h.post(
            "/v1/reference/holidays/import?partial=true",
            content="日期,类型,名称,来源\n2299-01-01,holiday,元旦,test\n2299-02-30,holiday,x,test\n".encode(),
            headers=CSV,
        ),
        200,
    ),
    Case(
        "import: a CR inside an unquoted CSV cell",
        "bureau",
        lambda h, f: h.post(
            "/v1/reference/grid-factors/import", content=b"#\xc3\xa7\rDJ", headers=CSV
        ),
        422,
        "invalid_request",
    ),
    Case(
        "import: a sheet past 16 MiB",
        "bureau",
        lambda h, f: h.post("/v1/firms/import", content=b"x" * (16 * 2**20 + 1), headers=CSV),
        413,
        "payload_too_large",
    ),
]


async def _a_firm(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        firm: int = await conn.fetchval("SELECT min(firm_id) FROM meters WHERE code = 'fuzz-0'")
        return firm
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def facts(live_api: LiveApi) -> dict[str, Any]:
    return {"firm": asyncio.run(_a_firm(live_api.dsn))}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, live_api: LiveApi, facts: dict[str, Any]) -> None:
    headers = {"X-API-Key": live_api.keys[case.role]}
    with httpx.Client(base_url=live_api.url, timeout=60, headers=headers) as http:
        response = case.send(http, facts)
    assert response.status_code == case.status, response.text[:500]
    if case.problem is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == f"/problems/{case.problem}"
        assert response.json()["detail"]

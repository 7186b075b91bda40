"""Towns over HTTP: the reference list, short or full names accepted and stored short, an
unknown town a 422 listing the valid ones (registration, change, import)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import TOWN, Keys
from tests.ingest.conftest import credit_code

pytestmark = pytest.mark.integration

YIWU = ["稠城", "北苑", "稠江", "江东", "后宅", "城西", "廿三里", "福田"]
YIWU += ["佛堂", "赤岸", "义亭", "上溪", "大陈", "苏溪"]


def firm(town: str) -> dict[str, object]:
    return {
        "credit_code": credit_code(uuid.uuid4().int % 10_000_000),
        "name": "义乌市镇街测试有限公司",
        "industry": "C1711",
        "town": town,
    }


async def test_the_towns_list(client: httpx.AsyncClient, keys: Keys) -> None:
    for role in ("bureau", "admin", "field", "town"):
        response = await client.get("/v1/towns", headers=keys.headers(role))
        assert response.status_code == 200, response.text
    towns = response.json()
    # Other tests may add towns of their own to the session database: they sort after.
    assert [t["name"] for t in towns[:14]] == YIWU
    assert towns[0] == {
        "name": "稠城",
        "full_name": "稠城街道",
        "kind": "street",
        "notice_unit": "稠城街道办事处",
        "sort_order": 1,
    }
    assert towns[13] == {
        "name": "苏溪",
        "full_name": "苏溪镇",
        "kind": "town",
        "notice_unit": "苏溪镇人民政府",
        "sort_order": 14,
    }
    assert (await client.get("/v1/towns", headers=keys.headers("grid"))).status_code == 403


async def test_full_names_are_stored_short_and_seen_by_the_town_key(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    bureau = keys.headers("bureau")
    created = await client.post("/v1/firms", json=firm("苏溪镇"), headers=bureau)
    assert created.status_code == 201, created.text
    assert created.json()["town"] == TOWN
    seen = await client.get(f"/v1/firms/{created.json()['id']}", headers=keys.headers("town"))
    assert seen.status_code == 200
    by_full_name = await client.get(
        "/v1/firms?town=苏溪镇&limit=1000", headers=keys.headers("town")
    )
    assert by_full_name.status_code == 200
    assert created.json()["id"] in [f["id"] for f in by_full_name.json()["items"]]
    unknown = await client.get("/v1/firms?town=亚特兰蒂斯", headers=bureau)
    assert unknown.status_code == 422
    moved = await client.patch(
        f"/v1/firms/{created.json()['id']}", json={"town": "稠城街道"}, headers=bureau
    )
    assert moved.json()["town"] == "稠城"


async def test_an_unknown_town_is_a_422_listing_the_valid_ones(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    bureau = keys.headers("bureau")
    refused = await client.post("/v1/firms", json=firm("亚特兰蒂斯"), headers=bureau)
    assert refused.status_code == 422
    body = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert body["type"] == "/problems/invalid_request"
    assert body["valid_towns"][:14] == YIWU
    assert "亚特兰蒂斯" in body["detail"] and "苏溪" in body["detail"]
    created = (await client.post("/v1/firms", json=firm(TOWN), headers=bureau)).json()
    patched = await client.patch(
        f"/v1/firms/{created['id']}", json={"town": "亚特兰蒂斯"}, headers=bureau
    )
    assert patched.status_code == 422
    assert patched.json()["valid_towns"][:14] == YIWU


async def test_the_import_takes_full_names_and_reports_unknown_towns(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    codes = [credit_code(uuid.uuid4().int % 10_000_000) for _ in range(3)]
    sheet = (
        "统一社会信用代码,企业名称,行业代码,镇街\n"
        f"{codes[0]},甲厂,C1711,苏溪镇\n"
        f"{codes[1]},乙厂,C1711,稠城街道\n"
        f"{codes[2]},丙厂,C1711,亚特兰蒂斯\n"
    ).encode()
    headers = {**keys.headers("bureau"), "Content-Type": "text/csv"}
    strict = (await client.post("/v1/firms/import", content=sheet, headers=headers)).json()
    assert (strict["written"], strict["created"]) == (False, 0)
    assert [(e["row"], e["column"]) for e in strict["errors"]] == [(4, "town")]
    assert "valid towns: 稠城" in strict["errors"][0]["message"]
    partial = await client.post("/v1/firms/import?partial=true", content=sheet, headers=headers)
    assert (partial.json()["written"], partial.json()["created"]) == (True, 2)
    listed = await client.get(f"/v1/firms?q={codes[1]}", headers=keys.headers("bureau"))
    assert [f["town"] for f in listed.json()["items"]] == ["稠城"]

"""Firms, meters, imports and output figures through the API."""

from __future__ import annotations

import io
import uuid

import asyncpg
import httpx
import polars as pl
import pytest

from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.ingest.conftest import credit_code

pytestmark = pytest.mark.integration


def new_code() -> str:
    return credit_code(uuid.uuid4().int % 10_000_000)


async def make_firm(client: httpx.AsyncClient, keys: Keys, town: str = TOWN) -> dict[str, object]:
    response = await client.post(
        "/v1/firms",
        json={
            "credit_code": new_code(),
            "name": "义乌市测试针织有限公司",
            "industry": "C1711",
            "town": town,
            "land_mu": "12.5",
            "above_scale": True,
            "tags": ["D-class"],
        },
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_firm_lifecycle_and_town_scope(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    mine = await make_firm(client, keys, TOWN)
    theirs = await make_firm(client, keys, OTHER_TOWN)
    assert mine["land_mu"] == "12.50" and mine["meters"] == 0

    own = await client.get(f"/v1/firms/{mine['id']}", headers=keys.headers("town"))
    assert own.status_code == 200
    other = await client.get(f"/v1/firms/{theirs['id']}", headers=keys.headers("town"))
    assert other.status_code == 403
    assert other.json()["type"] == "/problems/forbidden"
    assert TOWN not in str(other.json().get("items", ""))

    listed = (await client.get("/v1/firms?limit=1000", headers=keys.headers("town"))).json()
    assert {f["town"] for f in listed["items"]} == {TOWN}
    asked = await client.get(f"/v1/firms?town={OTHER_TOWN}", headers=keys.headers("town"))
    assert asked.status_code == 403

    patched = await client.patch(
        f"/v1/firms/{mine['id']}", json={"tags": []}, headers=keys.headers("bureau")
    )
    assert patched.json()["tags"] == []
    audit = await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"firm:{mine['id']}"
    )
    assert [a["action"] for a in audit] == ["firm.create", "firm.update"]


async def test_invalid_firm_is_refused_with_problem(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.post(
        "/v1/firms",
        json={"credit_code": "91330782MA00000050", "name": "x", "industry": "17", "town": "苏溪"},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/invalid_request"
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "credit_code"),
        ("body", "industry"),
    }
    duplicate = await make_firm(client, keys)
    again = await client.post(
        "/v1/firms", json={**duplicate, "id": None}, headers=keys.headers("bureau")
    )
    assert again.status_code == 409


async def test_csv_import_is_all_or_nothing_unless_partial(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    good = [new_code() for _ in range(3)]
    csv_text = (
        "统一社会信用代码,企业名称,行业代码,镇街,用地面积(亩),规上企业,标签\n"
        f"{good[0]},甲厂,C1711,苏溪,10,是,D-class;两高\n"
        f"{good[1]},乙厂,C2438,佛堂,3.5,否,\n"
        "91330782MA0000000X,丙厂,C1711,苏溪,1,否,\n"
        f"{good[2]},丁厂,XX,苏溪,1,否,\n"
    )
    headers = {**keys.headers("bureau"), "Content-Type": "text/csv"}
    answer = await client.post("/v1/firms/import", content=csv_text.encode(), headers=headers)
    assert answer.status_code == 422
    refused = answer.json()
    assert refused["written"] is False
    assert [(e["row"], e["column"]) for e in refused["errors"]] == [
        (4, "credit_code"),
        (5, "industry"),
    ]
    assert await db.fetchval("SELECT count(*) FROM firms WHERE credit_code = ANY($1)", good) == 0

    partial = (
        await client.post(
            "/v1/firms/import?partial=true", content=csv_text.encode(), headers=headers
        )
    ).json()
    assert (partial["written"], partial["created"], partial["updated"]) == (True, 2, 0)
    tags = await db.fetchval("SELECT tags FROM firms WHERE credit_code = $1", good[0])
    assert tags == ["D-class", "两高"]


async def test_xlsx_output_figures_import(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await make_firm(client, keys)
    frame = pl.DataFrame(
        {
            "统一社会信用代码": [firm["credit_code"]] * 2 + ["91350100M000100Y43"],
            "月份": ["2026-01", "2026年2月", "2026-01"],
            "工业总产值": ["3000000", "2800000.5", "1"],
            "工业增加值": ["900000", "850000", "1"],
            "税收": ["120000", "110000", "1"],
            "从业人员": ["85", "84", "1"],
        }
    )
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = await client.post(
        "/v1/firms/output-figures/import?partial=true",
        content=buffer.getvalue(),
        headers={**keys.headers("bureau"), "Content-Type": xlsx},
    )
    result = response.json()
    assert (result["created"], [e["row"] for e in result["errors"]]) == (2, [4])
    figures = (
        await client.get(f"/v1/firms/{firm['id']}/output-figures", headers=keys.headers("town"))
    ).json()
    assert [(f["month"], f["output_value"], f["employees"]) for f in figures] == [
        ("2026-01-01", "3000000.00", 85),
        ("2026-02-01", "2800000.50", 84),
    ]


async def test_meter_replacement_closes_old_and_opens_new(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await make_firm(client, keys)
    code = f"M-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/v1/meters",
        json={
            "firm_id": firm["id"],
            "code": code,
            "protocol": "dlt645",
            "ct_ratio": "40",
            "address": {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"},
            "installed_at": "2026-01-01T00:00:00+08:00",
        },
        headers=keys.headers("field"),
    )
    assert created.status_code == 201, created.text
    old = created.json()
    assert (old["multiplier"], old["unit"]) == ("40", "kWh")
    bad = await client.post(
        "/v1/meters",
        json={
            "firm_id": firm["id"],
            "code": code + "x",
            "protocol": "modbus",
            "address": {},
            "installed_at": "2026-01-01T00:00:00+08:00",
        },
        headers=keys.headers("field"),
    )
    assert bad.status_code == 422

    swap = await client.post(
        f"/v1/meters/{old['id']}/replace",
        json={"code": code + "-2", "at": "2026-03-01T10:00:00+08:00"},
        headers=keys.headers("field"),
    )
    assert swap.status_code == 201, swap.text
    new = swap.json()
    assert (new["replaces_meter_id"], new["firm_id"], new["ct_ratio"]) == (
        old["id"],
        firm["id"],
        "40",
    )
    again = await client.post(
        f"/v1/meters/{old['id']}/replace",
        json={"code": code + "-3", "at": "2026-04-01T10:00:00+08:00"},
        headers=keys.headers("field"),
    )
    assert again.status_code == 409
    removed = await db.fetchval("SELECT removed_at FROM meters WHERE id = $1", old["id"])
    assert removed.isoformat() == "2026-03-01T02:00:00+00:00"
    active = (
        await client.get(f"/v1/meters?firm_id={firm['id']}", headers=keys.headers("bureau"))
    ).json()
    assert [m["code"] for m in active] == [code + "-2"]

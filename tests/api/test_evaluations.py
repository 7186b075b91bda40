"""Evaluations and carbon grades over HTTP: a run by the bureau, town scoping, CSV/XLSX
exports read back, official classes imported and a firm's history."""

from __future__ import annotations

import io

import asyncpg
import httpx
import polars as pl
import pytest

from tests.alerts.evaluation_seed import even, seed_firm
from tests.alerts.test_evaluation_run import below_totals, hand_above_month
from tests.api.conftest import OTHER_TOWN, TOWN, Keys

pytestmark = pytest.mark.integration

YEAR = 2046


@pytest.fixture
async def city(db: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """Two firms in 苏溪 and one in 佛堂 with figures for YEAR (once per session)."""
    rows = await db.fetch(
        "SELECT f.id, f.credit_code, f.town FROM firms f JOIN output_figures o ON o.firm_id = f.id "
        "WHERE o.month = make_date($1, 1, 1) ORDER BY f.id",
        YEAR,
    )
    if not rows:
        below = even(below_totals())
        await seed_firm(db, year=YEAR, monthly=hand_above_month, town=TOWN, industry="C2921")
        await seed_firm(db, year=YEAR, monthly=below, town=TOWN, above_scale=False, land_mu=5.0)
        await seed_firm(db, year=YEAR, monthly=hand_above_month, town=OTHER_TOWN)
        rows = await db.fetch(
            "SELECT f.id, f.credit_code, f.town FROM firms f JOIN output_figures o "
            "ON o.firm_id = f.id WHERE o.month = make_date($1, 1, 1) ORDER BY f.id",
            YEAR,
        )
    names = ("above", "below", "other")
    return {n: (r["id"], r["credit_code"]) for n, r in zip(names, rows, strict=True)}


async def run(client: httpx.AsyncClient, keys: Keys, **body: object) -> httpx.Response:
    return await client.post(
        "/v1/evaluations/run", json={"year": YEAR, **body}, headers=keys.headers("bureau")
    )


async def test_the_bureau_runs_a_year_and_towns_see_their_own(
    client: httpx.AsyncClient, keys: Keys, city: dict[str, tuple[int, str]]
) -> None:
    response = await run(client, keys)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["scheme"] == "huangyan-2022"
    # Two above-scale firms with the same figures tie at rank 1: 1/2 <= 0.6, both B.
    assert summary["classes"]["above_scale"] == {"B": 2}
    assert summary["factor"]["year"] == 2022
    denied = await client.post(
        "/v1/evaluations/run", json={"year": YEAR}, headers=keys.headers("town")
    )
    assert denied.status_code == 403

    params: dict[str, str | int] = {"year": YEAR, "source": "computed"}
    bureau = await client.get("/v1/evaluations", params=params, headers=keys.headers("bureau"))
    ours = {city["above"][0], city["below"][0], city["other"][0]}
    assert ours <= {i["firm_id"] for i in bureau.json()["items"]}
    town = await client.get("/v1/evaluations", params=params, headers=keys.headers("town"))
    assert town.status_code == 200
    body = town.json()
    assert body["town"] == TOWN and {i["town"] for i in body["items"]} == {TOWN}
    assert city["other"][0] not in {i["firm_id"] for i in body["items"]}
    other = await client.get(
        "/v1/evaluations", params=params | {"town": OTHER_TOWN}, headers=keys.headers("town")
    )
    assert other.status_code == 403
    full_name = await client.get(
        "/v1/evaluations", params=params | {"town": f"{TOWN}镇"}, headers=keys.headers("bureau")
    )
    assert {i["town"] for i in full_name.json()["items"]} == {TOWN}
    grades = await client.get(
        "/v1/carbon-grades", params={"year": YEAR}, headers=keys.headers("town")
    )
    assert grades.status_code == 200
    assert {i["town"] for i in grades.json()["items"]} == {TOWN}


async def test_unknown_schemes_and_missing_factors_are_problems(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    unknown = await run(client, keys, scheme="nowhere-2030")
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    no_factor = await client.post(
        "/v1/evaluations/run",
        json={"year": 2020, "scheme": "huangyan-2021"},
        headers=keys.headers("bureau"),
    )
    assert no_factor.status_code == 409, no_factor.text
    assert no_factor.json()["type"] == "/problems/conflict"


async def test_csv_and_xlsx_exports_read_back(
    client: httpx.AsyncClient, keys: Keys, city: dict[str, tuple[int, str]]
) -> None:
    assert (await run(client, keys)).status_code == 200
    params: dict[str, str | int] = {"year": YEAR, "town": TOWN, "source": "computed"}
    headers = keys.headers("bureau")
    json_items = (await client.get("/v1/evaluations", params=params, headers=headers)).json()[
        "items"
    ]
    mine = {city["above"][0], city["below"][0]}
    expected = {i["firm_id"]: i for i in json_items if i["firm_id"] in mine}
    assert {i["cohort"] for i in expected.values()} == {"above_scale", "below_scale_3mu"}

    csv = await client.get("/v1/evaluations", params=params | {"format": "csv"}, headers=headers)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith(b"\xef\xbb\xbf")
    frame = pl.read_csv(io.BytesIO(csv.content[3:]))
    xlsx = await client.get("/v1/evaluations", params=params | {"format": "xlsx"}, headers=headers)
    assert "attachment" in xlsx.headers["content-disposition"]
    sheet = pl.read_excel(io.BytesIO(xlsx.content))
    for table in (frame, sheet):
        rows = {r["firm_id"]: r for r in table.iter_rows(named=True) if r["firm_id"] in mine}
        assert set(rows) == mine
        for firm, row in rows.items():
            assert row["class"] == expected[firm]["class"]
            assert row["score"] == pytest.approx(expected[firm]["score"], rel=1e-4)
            assert row["tax_per_mu"] == pytest.approx(expected[firm]["tax_per_mu"], rel=1e-4)

    zh = await client.get(
        "/v1/carbon-grades",
        params={"year": YEAR, "format": "csv", "lang": "zh"},
        headers=headers,
    )
    grades = pl.read_csv(io.BytesIO(zh.content[3:]))
    assert {"碳效等级", "碳效指数", "排放因子年度"} <= set(grades.columns)
    above = grades.filter(pl.col("企业编号") == city["above"][0]).row(0, named=True)
    assert above["排放因子年度"] == 2022


async def test_official_classes_and_a_firms_history(
    client: httpx.AsyncClient, keys: Keys, city: dict[str, tuple[int, str]]
) -> None:
    assert (await run(client, keys)).status_code == 200
    firm, code = city["above"]
    sheet = f"统一社会信用代码,年度,评价类别,综合得分\n{code},{YEAR},A,95\n".encode()
    denied = await client.post(
        "/v1/evaluations/official/import",
        content=sheet,
        headers=keys.headers("town") | {"content-type": "text/csv"},
    )
    assert denied.status_code == 403
    imported = await client.post(
        "/v1/evaluations/official/import",
        content=sheet,
        headers=keys.headers("bureau") | {"content-type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["written"] and not imported.json()["errors"]
    bad = await client.post(
        "/v1/evaluations/official/import",
        content=b"code,year\n",
        headers=keys.headers("bureau") | {"content-type": "text/csv"},
    )
    assert bad.status_code == 422  # unknown column

    history = await client.get(f"/v1/firms/{firm}/evaluations", headers=keys.headers("town"))
    assert history.status_code == 200
    sources = {(e["year"], e["source"]): e for e in history.json()["evaluations"]}
    assert sources[(YEAR, "official")]["class"] == "A"
    assert sources[(YEAR, "computed")]["cohort"] == "above_scale"
    assert history.json()["carbon_grades"][0]["year"] == YEAR
    other_town = await client.get(
        f"/v1/firms/{city['other'][0]}/evaluations", headers=keys.headers("town")
    )
    assert other_town.status_code == 403
    official = await client.get(
        "/v1/evaluations",
        params={"year": YEAR, "source": "official", "class": "A"},
        headers=keys.headers("bureau"),
    )
    assert [i["firm_id"] for i in official.json()["items"]] == [firm]

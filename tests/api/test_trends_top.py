"""Top consumers and fastest growers: ordering, the previous period, pagination."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import polars as pl
import pytest

from api.trends.schemas import TopOut
from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, seed, unique_town

pytestmark = pytest.mark.integration

MARCH = {"start": "2032-03-01", "end": "2032-04-01"}


@pytest.fixture
async def town(db: asyncpg.Connection) -> tuple[str, list[int]]:
    """Five firms in a town of their own; returns the town and the firm ids f1..f5."""
    town = unique_town()
    plan: list[list[tuple[Any, ...]]] = [
        # f1: February 100, March 150 (25 + 60 + 65 on the 8th, 10th and 11th)
        [
            (at(2032, 2, 15, 10), 100.0),
            (at(2032, 3, 8, 10), 25.0),
            (at(2032, 3, 10, 10), 60.0),
            (at(2032, 3, 11, 10), 65.0),
        ],
        [(at(2032, 2, 15, 10), 200.0), (at(2032, 3, 20, 10), 100.0)],  # f2: 200 -> 100
        [(at(2032, 2, 15, 10), 10.0), (at(2032, 3, 20, 10), 40.0)],  # f3: 10 -> 40
        [(at(2032, 3, 20, 10), 300.0, True)],  # f4: new in March, estimated
        [(at(2032, 2, 15, 10), 50.0)],  # f5: nothing in March
    ]
    firms = []
    for n, rows in enumerate(plan, 1):
        firm = await new_firm(db, town=town, name=f"排名企业{n}")
        await seed(db, await new_meter(db, firm), rows)
        firms.append(firm)
    return town, firms


async def top(http: httpx.AsyncClient, keys: Keys, **params: Any) -> dict[str, Any]:
    response = await http.get(
        "/v1/trends/top", params={**MARCH, **params}, headers=keys.headers("bureau")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    TopOut.model_validate(body)
    assert response.headers["x-total-count"] == str(body["total"])
    return body


def ranks(body: dict[str, Any], firms: list[int], *fields: str) -> list[tuple[Any, ...]]:
    return [
        (r["rank"], f"f{firms.index(r['firm_id']) + 1}", *(r[f] for f in fields))
        for r in body["items"]
    ]


async def test_top_consumers(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, firms = town
    body = await top(http, keys, town=name)
    assert body["previous_start"] == "2032-02-01"
    assert body["total"] == 4
    assert ranks(body, firms, "energy", "previous_energy", "change", "estimated_share") == [
        (1, "f4", 300.0, None, None, 1.0),
        (2, "f1", 150.0, 100.0, 50.0, 0.0),
        (3, "f2", 100.0, 200.0, -100.0, 0.0),
        (4, "f3", 40.0, 10.0, 30.0, 0.0),
    ]
    page = await top(http, keys, town=name, limit=2, offset=1)
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert ranks(page, firms) == [(2, "f1"), (3, "f2")]
    lowest = await top(http, keys, town=name, order="asc", limit=1)
    assert ranks(lowest, firms, "energy") == [(1, "f3", 40.0)]


async def test_fastest_growers(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, firms = town
    body = await top(http, keys, town=name, by="growth")
    # f4 has no previous energy and f5 none now: neither has a growth ratio.
    assert ranks(body, firms, "change_ratio") == [(1, "f3", 3.0), (2, "f1", 0.5), (3, "f2", -0.5)]
    body = await top(http, keys, town=name, by="growth", min_previous=50)
    assert ranks(body, firms, "change_ratio") == [(1, "f1", 0.5), (2, "f2", -0.5)]
    # Not whole months: the previous period is as many days (8-9 March for 10-11 March).
    body = await top(http, keys, town=name, by="growth", start="2032-03-10", end="2032-03-12")
    assert body["previous_start"] == "2032-03-08"
    assert ranks(body, firms, "energy", "previous_energy", "change_ratio") == [
        (1, "f1", 125.0, 25.0, 4.0)
    ]


async def test_town_keys_and_downloads(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, firms = town
    response = await http.get(
        "/v1/trends/top", params={**MARCH, "town": name}, headers=keys.headers("town")
    )
    assert response.status_code == 403
    response = await http.get(
        "/v1/trends/top", params={**MARCH, "town": OTHER_TOWN}, headers=keys.headers("town")
    )
    assert response.status_code == 403
    response = await http.get("/v1/trends/top", params=MARCH, headers=keys.headers("town"))
    assert response.status_code == 200
    body = response.json()
    assert body["town"] == TOWN
    assert not set(firms) & {r["firm_id"] for r in body["items"]}

    response = await http.get(
        "/v1/trends/top",
        params={**MARCH, "town": name, "format": "csv", "lang": "zh"},
        headers=keys.headers("bureau"),
    )
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff排名,企业编号,统一社会信用代码,企业名称,镇街,行业代码,本期用量")
    assert f"排名企业4,{name},C1711,300.0" in text
    response = await http.get(
        "/v1/trends/top",
        params={**MARCH, "town": name, "format": "xlsx", "lang": "zh"},
        headers=keys.headers("bureau"),
    )
    sheet = pl.read_excel(response.content)
    assert sheet.columns[:4] == ["排名", "企业编号", "统一社会信用代码", "企业名称"]
    assert sheet["企业名称"].to_list() == ["排名企业4", "排名企业1", "排名企业2", "排名企业3"]
    assert sheet["本期用量"].to_list() == [300.0, 150.0, 100.0, 40.0]

"""GET /v1/findings: filters, the rule's sentence, and town scoping."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from meterhub.settings import Settings
from tests.alerts.city import WEEK, FirmPlan, seed_and_judge
from tests.api.conftest import OTHER_TOWN, TOWN, Keys

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def city(settings: Settings) -> dict[str, int]:
    return await seed_and_judge(
        settings,
        {
            TOWN: [FirmPlan("listed", lists=[("high_energy", date(2025, 6, 1))])],
            OTHER_TOWN: [FirmPlan("other", lists=[("land_reclaim", date(2025, 6, 1))])],
        },
    )


async def test_bureau_filters_and_reads_why(
    http: httpx.AsyncClient, keys: Keys, city: dict[str, int]
) -> None:
    response = await http.get(
        "/v1/findings",
        params={"rule": "monitored_list", "firm_id": city["listed"], "week": str(WEEK)},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    [item] = body["items"]
    assert (item["town"], item["status"], item["severity"]) == (TOWN, "open", "high")
    assert item["text"] == "重点监测名单：高耗能企业"
    assert item["evidence"]["codes"] == ["high_energy"]


async def test_a_town_sees_only_its_own_findings(
    http: httpx.AsyncClient, keys: Keys, city: dict[str, int]
) -> None:
    own = await http.get(
        "/v1/findings", params={"rule": "monitored_list"}, headers=keys.headers("town")
    )
    assert own.status_code == 200
    firms = {i["firm_id"] for i in own.json()["items"]}
    assert city["listed"] in firms and city["other"] not in firms
    assert {i["town"] for i in own.json()["items"]} == {TOWN}
    other = await http.get(
        "/v1/findings", params={"town": OTHER_TOWN}, headers=keys.headers("town")
    )
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"rule": "nope"}, "unknown rule"), ({"week": "2026-11-24"}, "Monday")],
)
async def test_bad_filters_are_422(
    http: httpx.AsyncClient, keys: Keys, params: dict[str, str], fragment: str
) -> None:
    response = await http.get("/v1/findings", params=params, headers=keys.headers("bureau"))
    assert response.status_code == 422
    assert fragment in response.text

"""GET /v1/campaign: the bureau sees the city and every town; a town key its own town only,
without the city's or another town's numbers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import httpx
import pytest

from alerts import campaign_targets
from api.app import create_app
from api.routes.campaign import campaign_config
from meterhub.settings import Settings
from tests.alerts.campaign_seed import case, firm, metered
from tests.api.conftest import OTHER_TOWN, TOWN, Keys

pytestmark = pytest.mark.integration

WEEK = "2032-12-06"  # "now" is 2031-12..2032-11; no other test uses these weeks
CONFIG = dataclasses.replace(
    campaign_targets.load(),
    plan=dataclasses.replace(campaign_targets.load().plan, count_from=date(2032, 1, 1)),
)


@pytest.fixture
async def http(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the campaign counted from 2032 on (other tests' cases never count)."""
    app = create_app(api_settings)
    app.dependency_overrides[campaign_config] = lambda: CONFIG
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://meterhub.test"
        ) as client,
    ):
        yield client


async def seed(db: asyncpg.Connection) -> tuple[int, int]:
    # 苏溪: rectified; 12 x 3,000 kWh before its case opened, 12 x 1,000 now: 24,000 kWh
    # freed = 24,000 x 0.1229 / 1000 = 2.9496 tce.
    mine = await firm(db, "苏溪整改", town=TOWN, land_mu=10)
    await case(db, mine, "high_energy", opened=date(2031, 12, 1), resolved=date(2032, 6, 7))
    await metered(db, mine, date(2030, 12, 1), 12, 3_000)
    await metered(db, mine, date(2031, 12, 1), 12, 1_000)
    # 佛堂: closed down.
    other = await firm(db, "佛堂关停", town=OTHER_TOWN, land_mu=25)
    await case(
        db,
        other,
        "d_class",
        opened=date(2031, 12, 1),
        resolved=date(2032, 3, 1),
        basis="closed_down",
    )
    return mine, other


async def test_town_scoping(http: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection) -> None:
    mine, other = await seed(db)

    bureau = await http.get("/v1/campaign", params={"week": WEEK}, headers=keys.headers("bureau"))
    assert bureau.status_code == 200, bureau.text
    body = bureau.json()
    towns = await db.fetchval("SELECT count(*) FROM towns")  # 14 seeded, and tests' own
    assert body["scope"] == "city" and len(body["towns"]) == towns >= 14
    assert body["city"]["rectified"]["firm_ids"] == [mine]
    assert body["city"]["eliminated"]["firm_ids"] == [other]
    assert body["city"]["energy_freed"]["basis"].startswith("eliminated and rectified firms")

    town = await http.get("/v1/campaign", params={"week": WEEK}, headers=keys.headers("town"))
    assert town.status_code == 200, town.text
    scoped = town.json()
    assert scoped["scope"] == TOWN and scoped["city"] is None
    assert [t["town"] for t in scoped["towns"]] == [TOWN]
    assert [t["code"] for t in scoped["targets"]] == list(campaign_targets.CODES)
    figures = scoped["towns"][0]["figures"]
    assert figures["rectified"]["firm_ids"] == [mine]
    assert figures["eliminated"]["measured"] == 0
    assert figures["energy_freed"]["measured"] == pytest.approx(2.9496)
    assert figures["energy_freed"]["share_of_target"] == pytest.approx(2.9496 / 100_000)
    assert OTHER_TOWN not in json.dumps(scoped, ensure_ascii=False)

    refused = await http.get(
        "/v1/campaign", params={"week": WEEK, "town": OTHER_TOWN}, headers=keys.headers("town")
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"

    theirs = await http.get(
        "/v1/campaign", params={"week": WEEK}, headers=keys.headers("other_town")
    )
    assert theirs.json()["towns"][0]["figures"]["eliminated"]["firm_ids"] == [other]

    one = await http.get(
        "/v1/campaign", params={"week": WEEK, "town": "佛堂镇"}, headers=keys.headers("bureau")
    )
    assert one.json()["scope"] == OTHER_TOWN and one.json()["city"] is None


async def test_the_week_must_be_a_monday(http: httpx.AsyncClient, keys: Keys) -> None:
    response = await http.get(
        "/v1/campaign", params={"week": "2032-12-07"}, headers=keys.headers("bureau")
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid_request"

"""Aggregates over towns, industries and the city; what each key may see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, seed, unique_town

pytestmark = pytest.mark.integration

# 5-6 May 2031: no other test writes intervals then, so the city total is known.
DAYS = {"start": "2031-05-05", "end": "2031-05-07"}


@dataclass(frozen=True)
class City:
    own: int  # 苏溪, C1711
    other: int  # 佛堂, C1712
    third: int  # a town of its own, C2611
    own_meter: int
    other_meter: int
    town: str


@pytest.fixture(scope="module")
async def city(settings: Settings) -> AsyncIterator[City]:
    """Seeded once for the module: the city totals below count these firms exactly once."""
    db = await asyncpg.connect(settings.dsn())
    try:
        yield await _seed_city(db)
    finally:
        await db.close()


async def _seed_city(db: asyncpg.Connection) -> City:
    town = unique_town()
    own = await new_firm(db, town=TOWN, industry="C1711")
    other = await new_firm(db, town=OTHER_TOWN, industry="C1712")
    third = await new_firm(db, town=town, industry="C2611")
    meters = [await new_meter(db, f) for f in (own, other, third)]
    await seed(db, meters[0], [(at(2031, 5, 5, 10), 10.0), (at(2031, 5, 6, 10), 2.0)])
    await seed(db, meters[1], [(at(2031, 5, 5, 10), 20.0)])
    await seed(db, meters[2], [(at(2031, 5, 5, 10), 40.0), (at(2031, 5, 6, 10), 1.0, True)])
    return City(own, other, third, meters[0], meters[1], town)


async def series(
    http: httpx.AsyncClient, keys: Keys, role: str = "bureau", **params: Any
) -> httpx.Response:
    return await http.get(
        "/v1/trends/series", params={**DAYS, **params}, headers=keys.headers(role)
    )


def energies(response: httpx.Response) -> list[tuple[str | None, float | None]]:
    assert response.status_code == 200, response.text
    return [(b.get("group"), b["energy"]) for b in response.json()["buckets"]]


async def test_city_town_and_industry_aggregates(
    http: httpx.AsyncClient, keys: Keys, city: City
) -> None:
    response = await series(http, keys, scope="city")
    assert energies(response) == [(None, 70.0), (None, 3.0)]
    assert energies(await series(http, keys, "admin", scope="city")) == [(None, 70.0), (None, 3.0)]
    assert response.json()["total"] == {"energy": 73.0, "estimated_share": 0.013699}  # 1/73
    assert energies(await series(http, keys, scope="town", id=city.town)) == [
        (None, 40.0),
        (None, 1.0),
    ]
    assert energies(await series(http, keys, scope="industry", id="C17")) == [
        (None, 30.0),
        (None, 2.0),
    ]
    assert energies(await series(http, keys, scope="industry", id="C2611")) == [
        (None, 40.0),
        (None, 1.0),
    ]
    # One series per town (sorted), each over every bucket of the range.
    assert energies(await series(http, keys, scope="city", breakdown="town")) == [
        (OTHER_TOWN, 20.0),
        (OTHER_TOWN, None),
        (city.town, 40.0),
        (city.town, 1.0),
        (TOWN, 10.0),
        (TOWN, 2.0),
    ]
    assert energies(
        await series(http, keys, scope="city", breakdown="industry", granularity="week")
    ) == [("C17", 32.0), ("C26", 41.0)]


async def test_town_key_sees_only_its_own_town(
    http: httpx.AsyncClient, keys: Keys, city: City
) -> None:
    own = await series(http, keys, "town", scope="firm", id=city.own)
    assert energies(own) == [(None, 10.0), (None, 2.0)]
    assert energies(await series(http, keys, "town", scope="meter", id=city.own_meter)) == [
        (None, 10.0),
        (None, 2.0),
    ]
    for params in (
        {"scope": "firm", "id": city.other},
        {"scope": "meter", "id": city.other_meter},
        {"scope": "town", "id": OTHER_TOWN},
        {"scope": "town", "id": city.town},
    ):
        response = await series(http, keys, "town", **params)
        assert response.status_code == 403, params
        assert response.headers["content-type"] == "application/problem+json"
        assert "buckets" not in response.json()
    # The other town's key gets the mirror image.
    assert energies(await series(http, keys, "other_town", scope="firm", id=city.other)) == [
        (None, 20.0),
        (None, None),
    ]
    assert (await series(http, keys, "other_town", scope="firm", id=city.own)).status_code == 403
    # The city and an industry are narrowed to the key's own town, and say so.
    response = await series(http, keys, "town", scope="city")
    assert energies(response) == [(None, 10.0), (None, 2.0)]
    assert response.json()["town"] == TOWN
    response = await series(http, keys, "town", scope="industry", id="C17")
    assert energies(response) == [(None, 10.0), (None, 2.0)]
    assert response.json()["town"] == TOWN
    response = await series(http, keys, "town", scope="city", breakdown="town")
    assert energies(response) == [(TOWN, 10.0), (TOWN, 2.0)]


@pytest.mark.parametrize("role", ["grid", "other_grid", "field"])
async def test_other_roles_are_refused(
    http: httpx.AsyncClient, keys: Keys, city: City, role: str
) -> None:
    for path in ("series", "top", "intensity", "production-state"):
        response = await http.get(f"/v1/trends/{path}", headers=keys.headers(role))
        assert response.status_code == 403, (path, response.text)


async def test_no_key_is_401(http: httpx.AsyncClient) -> None:
    for path in ("series", "top", "intensity", "production-state"):
        response = await http.get(f"/v1/trends/{path}", params={"scope": "city", **DAYS})
        assert response.status_code == 401, path
        assert response.json()["type"] == "/problems/unauthorized"


async def test_unknown_targets_and_bad_parameters(
    http: httpx.AsyncClient, keys: Keys, city: City
) -> None:
    assert (await series(http, keys, scope="firm", id=999_999_999)).status_code == 404
    assert (await series(http, keys, scope="meter", id=999_999_999)).status_code == 404
    assert (await series(http, keys, scope="town", id="没有这个镇")).status_code == 404
    for params in (
        {"scope": "firm"},  # no id
        {"scope": "firm", "id": "abc"},
        {"scope": "industry", "id": "17"},
        {"scope": "firm", "id": city.own, "breakdown": "town"},
        {"scope": "city", "granularity": "fortnight"},
        {"scope": "city", "start": "2031-05-07", "end": "2031-05-05"},
        {"scope": "city", "granularity": "15min", "start": "2030-01-01", "end": "2031-01-01"},
    ):
        response = await series(http, keys, **params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["type"] == "/problems/invalid_request"

"""Listing meters: a town key sees only the meters of its own town's firms."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.api.test_registry import make_firm

pytestmark = pytest.mark.integration


async def make_meter(client: httpx.AsyncClient, keys: Keys, firm_id: object) -> int:
    response = await client.post(
        "/v1/meters",
        json={
            "firm_id": firm_id,
            "code": f"L-{uuid.uuid4().hex[:8]}",
            "protocol": "dlt645",
            "address": {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"},
            "installed_at": "2026-01-01T00:00:00+08:00",
        },
        headers=keys.headers("field"),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_town_key_lists_only_its_own_towns_meters(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    mine = await make_firm(client, keys, TOWN)
    theirs = await make_firm(client, keys, OTHER_TOWN)
    my_meter = await make_meter(client, keys, mine["id"])
    their_meter = await make_meter(client, keys, theirs["id"])
    town = keys.headers("town")

    listed = (await client.get("/v1/meters?limit=5000", headers=town)).json()
    ids = {m["id"] for m in listed}
    assert my_meter in ids and their_meter not in ids
    towns = await db.fetch(
        "SELECT DISTINCT town FROM firms WHERE id = ANY($1::bigint[])",
        [m["firm_id"] for m in listed],
    )
    assert [r["town"] for r in towns] == [TOWN]

    by_firm = (await client.get(f"/v1/meters?firm_id={mine['id']}", headers=town)).json()
    assert [m["id"] for m in by_firm] == [my_meter]
    other = await client.get(f"/v1/meters?firm_id={theirs['id']}", headers=town)
    assert other.status_code == 403
    everything = (await client.get("/v1/meters?limit=5000", headers=keys.headers("bureau"))).json()
    assert {my_meter, their_meter} <= {m["id"] for m in everything}

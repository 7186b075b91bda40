"""Registration refuses a meter address collectors would dial outside MHUB_COLLECT_NETWORKS."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from tests.api.conftest import Keys
from tests.api.test_registry import make_firm
from tests.support import in_process_api

pytestmark = pytest.mark.integration


def _meter(firm_id: object, protocol: str, address: dict[str, Any]) -> dict[str, Any]:
    return {
        "firm_id": firm_id,
        "code": f"NET-{uuid.uuid4().hex[:8]}",
        "protocol": protocol,
        "address": address,
        "installed_at": "2026-01-01T00:00:00+08:00",
    }


@pytest.mark.parametrize(
    ("protocol", "address"),
    [
        ("modbus", {"host": "10.20.0.7", "port": 502, "unit_id": 1}),
        ("dlt645", {"address": "000102030425", "bus": "tcp://10.20.0.7:8899"}),
        ("dlt645", {"address": "000102030425", "bus": "tcp://[2001:db8::7]:8899"}),
        ("modbus", {"host": "", "port": 502, "unit_id": 1}),
    ],
)
async def test_an_address_outside_the_networks_is_a_422_naming_the_setting(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection, protocol: str, address: Any
) -> None:
    firm = await make_firm(client, keys)
    body = _meter(firm["id"], protocol, address)
    response = await client.post("/v1/meters", json=body, headers=keys.headers("field"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/address_not_allowed"
    assert problem["setting"] == "MHUB_COLLECT_NETWORKS"
    assert problem["allowed"] == ["127.0.0.0/8", "::1/128"]
    assert "MHUB_COLLECT_NETWORKS" in problem["detail"]
    assert not await db.fetchval("SELECT count(*) FROM meters WHERE code = $1", body["code"])


@pytest.mark.parametrize(
    ("protocol", "address"),
    [
        ("modbus", {"host": "127.0.0.1", "port": 502, "unit_id": 1}),
        ("modbus", {"host": "localhost", "port": 502, "unit_id": 1}),
        ("dlt645", {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"}),
        ("dlt645", {"address": "000102030425", "bus": "dtu://yw-0001"}),
    ],
)
async def test_loopback_and_dial_in_addresses_register(
    client: httpx.AsyncClient, keys: Keys, protocol: str, address: Any
) -> None:
    firm = await make_firm(client, keys)
    body = _meter(firm["id"], protocol, address)
    response = await client.post("/v1/meters", json=body, headers=keys.headers("field"))
    assert response.status_code == 201, response.text


async def test_a_replacement_at_an_outside_address_is_refused_and_the_setting_rules(
    api_settings: Settings, keys: Keys
) -> None:
    wide = api_settings.model_copy(update={"collect_networks": "127.0.0.0/8,10.20.0.0/16"})
    async with in_process_api(wide) as client:
        firm = await make_firm(client, keys)
        inside = _meter(firm["id"], "modbus", {"host": "10.20.0.7", "port": 502, "unit_id": 1})
        created = await client.post("/v1/meters", json=inside, headers=keys.headers("field"))
        assert created.status_code == 201, created.text
        swap = await client.post(
            f"/v1/meters/{created.json()['id']}/replace",
            json={
                "code": inside["code"] + "-2",
                "at": "2026-03-01T10:00:00+08:00",
                "address": {"host": "10.21.0.1", "port": 502, "unit_id": 1},
            },
            headers=keys.headers("field"),
        )
        assert swap.status_code == 422, swap.text
        assert swap.json()["allowed"] == ["127.0.0.0/8", "10.20.0.0/16"]

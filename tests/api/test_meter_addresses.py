"""Registration refuses a meter address collectors would dial outside MHUB_COLLECT_NETWORKS.

Every address here is on loopback: the refusals run under an allow-list narrower than
loopback (127.0.0.2/32), so 127.0.0.1, ::1 and localhost are outside it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
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


async def _register(
    client: httpx.AsyncClient, keys: Keys, protocol: str, address: dict[str, Any]
) -> tuple[httpx.Response, dict[str, Any]]:
    """A new firm's meter at ``address``, registered with a field key; the answer, the body."""
    firm = await make_firm(client, keys)
    body = _meter(firm["id"], protocol, address)
    return await client.post("/v1/meters", json=body, headers=keys.headers("field")), body


#: The allow-list of the refusal tests: one loopback address.
NARROW = "127.0.0.2/32"


@pytest.fixture
async def narrow_client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with ``MHUB_COLLECT_NETWORKS=127.0.0.2/32``."""
    async with in_process_api(api_settings.model_copy(update={"collect_networks": NARROW})) as c:
        yield c


@pytest.mark.parametrize(
    ("protocol", "address"),
    [
        ("modbus", {"host": "127.0.0.1", "port": 502, "unit_id": 1}),
        ("modbus", {"host": "localhost", "port": 502, "unit_id": 1}),
        ("dlt645", {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"}),
        ("dlt645", {"address": "000102030425", "bus": "tcp://[::1]:8899"}),
        ("modbus", {"host": "", "port": 502, "unit_id": 1}),
    ],
)
async def test_an_address_outside_the_networks_is_a_422_naming_the_setting(
    narrow_client: httpx.AsyncClient,
    keys: Keys,
    db: asyncpg.Connection,
    protocol: str,
    address: Any,
) -> None:
    response, body = await _register(narrow_client, keys, protocol, address)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/address_not_allowed"
    assert problem["setting"] == "MHUB_COLLECT_NETWORKS"
    assert problem["allowed"] == [NARROW]
    assert "MHUB_COLLECT_NETWORKS" in problem["detail"]
    assert not await db.fetchval("SELECT count(*) FROM meters WHERE code = $1", body["code"])


@pytest.mark.parametrize(
    ("networks", "protocol", "address"),
    [
        (NARROW, "modbus", {"host": "127.0.0.2", "port": 502, "unit_id": 1}),
        (NARROW, "dlt645", {"address": "000102030425", "bus": "tcp://127.0.0.2:8899"}),
        (NARROW, "dlt645", {"address": "000102030425", "bus": "dtu://yw-0001"}),
        (None, "modbus", {"host": "127.0.0.1", "port": 502, "unit_id": 1}),
        (None, "modbus", {"host": "localhost", "port": 502, "unit_id": 1}),
        (None, "dlt645", {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"}),
        (None, "dlt645", {"address": "000102030425", "bus": "dtu://yw-0001"}),
    ],
)
async def test_an_address_inside_the_networks_or_dialling_in_registers(
    api_settings: Settings, keys: Keys, networks: str | None, protocol: str, address: Any
) -> None:
    """Under ``networks`` (None: the default, loopback)."""
    update = {} if networks is None else {"collect_networks": networks}
    async with in_process_api(api_settings.model_copy(update=update)) as client:
        response, _ = await _register(client, keys, protocol, address)
    assert response.status_code == 201, response.text
    assert response.json()["address"] == address


async def test_the_default_networks_are_loopback(client: httpx.AsyncClient, keys: Keys) -> None:
    response, _ = await _register(client, keys, "modbus", {"host": "", "port": 502, "unit_id": 1})
    assert response.status_code == 422, response.text
    assert response.json()["allowed"] == ["127.0.0.0/8", "::1/128"]


def _swap(code: object, address: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
    swap = {"code": f"{code}-{uuid.uuid4().hex[:4]}", "at": "2026-03-01T10:00:00+08:00"}
    return swap | ({} if address is None else {"address": address}) | more


async def test_a_replacement_at_an_outside_address_is_refused_and_the_setting_rules(
    api_settings: Settings, keys: Keys, db: asyncpg.Connection
) -> None:
    # 127.0.0.5 is allowed by the second network of the setting only.
    two = api_settings.model_copy(update={"collect_networks": "127.0.0.1/32,127.0.0.4/30"})
    async with in_process_api(two) as client:
        firm = await make_firm(client, keys)
        inside = _meter(firm["id"], "modbus", {"host": "127.0.0.5", "port": 502, "unit_id": 1})
        created = await client.post("/v1/meters", json=inside, headers=keys.headers("field"))
        assert created.status_code == 201, created.text
        url = f"/v1/meters/{created.json()['id']}/replace"
        outside = {"host": "127.0.0.9", "port": 502, "unit_id": 1}
        swap = await client.post(
            url, json=_swap(inside["code"], outside), headers=keys.headers("field")
        )
        assert swap.status_code == 422, swap.text
        problem = swap.json()
        assert problem["type"] == "/problems/address_not_allowed"
        assert problem["setting"] == "MHUB_COLLECT_NETWORKS"
        assert problem["allowed"] == ["127.0.0.1/32", "127.0.0.4/30"]
        assert "127.0.0.9" in problem["detail"]
        assert (
            await db.fetchval("SELECT removed_at FROM meters WHERE id = $1", created.json()["id"])
            is None
        )
        moved = {"host": "127.0.0.6", "port": 502, "unit_id": 1}
        swap = await client.post(
            url, json=_swap(inside["code"], moved), headers=keys.headers("field")
        )
        assert swap.status_code == 201, swap.text
        assert swap.json()["address"] == moved


@pytest.mark.parametrize(
    ("address", "more", "words"),
    [
        ({"host": "127.0.0.1", "port": 502}, {}, "a modbus address needs unit_id"),
        ({}, {}, "a modbus address needs host, port, unit_id"),
        (None, {"model": "no_such_model"}, "no register map for Modbus model 'no_such_model'"),
    ],
)
async def test_what_a_replacement_brings_is_checked_as_at_registration(
    client: httpx.AsyncClient,
    keys: Keys,
    db: asyncpg.Connection,
    address: dict[str, Any] | None,
    more: dict[str, Any],
    words: str,
) -> None:
    firm = await make_firm(client, keys)
    old = _meter(firm["id"], "modbus", {"host": "127.0.0.1", "port": 502, "unit_id": 1})
    created = await client.post("/v1/meters", json=old, headers=keys.headers("field"))
    assert created.status_code == 201, created.text
    swap = await client.post(
        f"/v1/meters/{created.json()['id']}/replace",
        json=_swap(old["code"], address, **more),
        headers=keys.headers("field"),
    )
    assert swap.status_code == 422, swap.text
    assert swap.headers["content-type"].startswith("application/problem+json")
    assert words in swap.json()["detail"]
    assert (
        await db.fetchval("SELECT removed_at FROM meters WHERE id = $1", created.json()["id"])
        is None
    )

"""Registration refuses a Modbus meter whose model has no register map, listing the known."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

import collectors.modbus.register_map as register_map
from tests.api.conftest import Keys
from tests.api.test_registry import make_firm

pytestmark = pytest.mark.integration

SHIPPED = sorted(
    p.stem
    for p in (Path(register_map.__file__).parent / "models").glob("*.toml")
    if not p.stem.endswith("_template")
)


def _modbus(firm_id: object, model: str | None) -> dict[str, Any]:
    return {
        "firm_id": firm_id,
        "code": f"MOD-{uuid.uuid4().hex[:8]}",
        "protocol": "modbus",
        "address": {"host": "127.0.0.1", "port": 502, "unit_id": 1},
        "model": model,
        "installed_at": "2026-01-01T00:00:00+08:00",
    }


async def test_an_unknown_modbus_model_is_a_422_listing_the_known_ones(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await make_firm(client, keys)
    body = _modbus(firm["id"], "chint_dtsu999")
    response = await client.post("/v1/meters", json=body, headers=keys.headers("field"))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid_request"
    assert len(SHIPPED) >= 3 and problem["known_models"] == SHIPPED
    assert "chint_dtsu999" in problem["detail"] and SHIPPED[0] in problem["detail"]
    assert not await db.fetchval("SELECT count(*) FROM meters WHERE code = $1", body["code"])


@pytest.mark.parametrize("model", [*SHIPPED, None])
async def test_a_known_model_or_none_is_registered(
    client: httpx.AsyncClient, keys: Keys, model: str | None
) -> None:
    firm = await make_firm(client, keys)
    response = await client.post(
        "/v1/meters", json=_modbus(firm["id"], model), headers=keys.headers("field")
    )
    assert response.status_code == 201, response.text
    assert response.json()["model"] == model


async def test_a_dlt645_meter_keeps_its_own_model_name(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    firm = await make_firm(client, keys)
    body = {
        **_modbus(firm["id"], "DTZY341"),
        "protocol": "dlt645",
        "address": {"address": "000102030425", "bus": "tcp://127.0.0.1:8899"},
    }
    response = await client.post("/v1/meters", json=body, headers=keys.headers("field"))
    assert response.status_code == 201, response.text

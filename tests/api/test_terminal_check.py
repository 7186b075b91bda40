"""The commissioning check (POST /v1/meters/{id}/check) against the simulators on 127.0.0.1:
what was read, what was refused and why, and for DL/T 645 the address the meter answers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from collectors.commissioning import DTU_NOT_CHECKED
from collectors.dlt645.codec import encode_address
from collectors.modbus.register_map import load_model
from meterhub.settings import Settings
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, MeterFaults
from simulators.dlt645_meter import LinearProvider as Dlt645Provider
from simulators.modbus_server import Fault, LinearProvider, ModbusMeterSimulator
from tests.api.conftest import Keys
from tests.support import create_meters, in_process_api

pytestmark = pytest.mark.integration

ADDRESS = "000102030425"
POWER_FACTOR_DI = 0x02060000


async def _register(db: asyncpg.Connection, protocol: str, address: dict[str, Any]) -> int:
    (meter,) = await create_meters(db, 1)
    await db.execute(
        "UPDATE meters SET protocol = $2, address = $3::jsonb WHERE id = $1",
        meter,
        protocol,
        orjson.dumps(address).decode(),
    )
    return meter


async def _check(client: httpx.AsyncClient, keys: Keys, meter: int) -> dict[str, Any]:
    response = await client.post(
        f"/v1/meters/{meter}/check", params={"timeout": 0.5}, headers=keys.headers("field")
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_a_modbus_terminal_shows_what_it_read_and_what_was_unusable(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    model = load_model("eastron_sdm630")
    provider = LinearProvider(epoch=datetime.now(UTC) - timedelta(hours=1))
    nan_power = Fault.garbage({"power": math.nan})
    async with ModbusMeterSimulator(
        {1: model, 2: model}, provider=provider, faults=lambda unit, now: nan_power
    ) as sim:
        host, port = sim.url.removeprefix("tcp://").split(":")
        meter = await _register(db, "modbus", {"host": host, "port": int(port), "unit_id": 1})
        report = await _check(client, keys, meter)
        refusing = await _register(db, "modbus", {"host": host, "port": int(port), "unit_id": 9})
        silent = await _check(client, keys, refusing)
    assert report["ok"] is True and report["model"] == "eastron_sdm630"
    assert report["values"]["voltage_a"] == pytest.approx(230.0)
    assert "power" not in report["values"] and report["garbage"]["power"]
    assert report["address"] is None and report["error"] is None
    assert report["link"] == sim.url
    assert not await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter)
    assert silent["ok"] is False and silent["values"] == {} and silent["error"]
    audited = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'meter.check' AND target = $1",
        f"meter:{meter}",
    )
    assert audited == 1


async def test_a_dlt645_terminal_shows_refusals_its_address_and_the_byte_order(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    faults = MeterFaults(no_data=frozenset({POWER_FACTOR_DI}))
    bus = SimulatedBus([Dlt645Meter(ADDRESS, faults=faults)], provider=Dlt645Provider())
    async with Dlt645GatewaySimulator(bus) as gw:
        meter = await _register(db, "dlt645", {"address": ADDRESS, "bus": gw.url})
        report = await _check(client, keys, meter)
    assert report["ok"] is True and report["values"]["energy"] > 0
    assert "NO_DATA" in report["refused"][f"di {POWER_FACTOR_DI:08X}"]
    assert report["meter_time"] is not None and abs(report["clock_drift_s"]) < 5
    address = report["address"]
    assert (address["registered"], address["answered"], address["matches"]) == (
        ADDRESS,
        ADDRESS,
        True,
    )
    assert address["wire"] == encode_address(ADDRESS).hex(" ").upper() == "25 04 03 02 01 00"
    assert "most significant pair first" in address["byte_order"]
    assert address["hint"] is None


async def test_an_address_registered_in_wire_order_is_named_with_the_right_one(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    wire_order = "250403020100"  # the bytes as a sniffer shows them, read as digits
    bus = SimulatedBus([Dlt645Meter(ADDRESS)], provider=Dlt645Provider())
    async with Dlt645GatewaySimulator(bus) as gw:
        meter = await _register(db, "dlt645", {"address": wire_order, "bus": gw.url})
        report = await _check(client, keys, meter)
    assert report["ok"] is False and report["values"] == {}
    assert "RequestTimeoutError" in report["error"]  # no meter has that address
    address = report["address"]
    assert (address["answered"], address["matches"]) == (ADDRESS, False)
    assert address["hint"] == (
        f"the registered address is the meter's in wire byte order: register {ADDRESS}"
    )


@pytest.fixture
async def walled_client(settings: Settings, tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The API with ``MHUB_COLLECT_NETWORKS=127.0.0.2/32``: 127.0.0.1 is outside."""
    walled = settings.model_copy(
        update={"spool_dir": tmp_path / "spool", "collect_networks": "127.0.0.2/32"}
    )
    async with in_process_api(walled) as http:
        yield http


async def _check_simulated(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection, host: str
) -> tuple[dict[str, Any], int]:
    """The check of a Modbus meter simulated on ``host``; the requests the meter received."""
    model = load_model("eastron_sdm630")
    async with ModbusMeterSimulator({1: model}, provider=LinearProvider(), host=host) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        meter = await _register(db, "modbus", {"host": host, "port": port, "unit_id": 1})
        return await _check(client, keys, meter), sim.requests[1]


async def test_a_terminal_outside_the_collect_networks_is_not_dialled(
    walled_client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    report, requests = await _check_simulated(walled_client, keys, db, "127.0.0.1")
    assert requests == 0
    assert report["ok"] is False
    assert report["error"] == (
        "DialRefusedError: 127.0.0.1 is not in MHUB_COLLECT_NETWORKS (127.0.0.2/32): not dialled"
    )
    inside, requests = await _check_simulated(walled_client, keys, db, "127.0.0.2")
    assert inside["ok"] is True and requests > 0, inside


async def test_pushing_and_removed_meters_are_not_checked(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (pushing,) = await create_meters(db, 1)  # grid feed
    refused = await client.post(f"/v1/meters/{pushing}/check", headers=keys.headers("bureau"))
    assert refused.status_code == 422 and "nothing to poll" in refused.json()["detail"]
    removed = await _register(db, "dlt645", {"address": ADDRESS, "bus": "tcp://127.0.0.1:9"})
    await db.execute("UPDATE meters SET removed_at = now() WHERE id = $1", removed)
    gone = await client.post(f"/v1/meters/{removed}/check", headers=keys.headers("admin"))
    assert gone.status_code == 409
    town = await client.post(f"/v1/meters/{pushing}/check", headers=keys.headers("town"))
    assert town.status_code == 403


async def test_two_meters_on_one_bus_collide_on_the_address_command(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    meters = [Dlt645Meter(ADDRESS), Dlt645Meter("000102030426")]
    async with Dlt645GatewaySimulator(SimulatedBus(meters, provider=Dlt645Provider())) as gw:
        meter = await _register(db, "dlt645", {"address": ADDRESS, "bus": gw.url})
        report = await _check(client, keys, meter)
    assert report["ok"] is True  # addressed reads are answered by one meter only
    address = report["address"]
    assert (address["answered"], address["matches"]) == (None, False)
    assert "several meters on one bus" in address["error"]


async def test_a_dtu_bus_is_left_to_the_collector(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    meter = await _register(db, "dlt645", {"address": ADDRESS, "bus": "dtu://860000000000001"})
    report = await _check(client, keys, meter)
    assert report["ok"] is False and report["address"] is None
    assert report["error"] == f"{DTU_NOT_CHECKED}: dtu://860000000000001"

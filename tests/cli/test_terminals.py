"""`meterhub terminals check METER` as field staff run it, against a simulated DL/T 645 bus
on 127.0.0.1: what was read, what was refused, the address the meter answers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from meterhub.settings import Settings
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, LinearProvider, MeterFaults
from tests.support import create_meters

pytestmark = pytest.mark.integration

ADDRESS = "000102030425"
POWER_FACTOR_DI = 0x02060000


async def _meterhub(settings: Settings, *args: str) -> tuple[int, str]:
    env = {**os.environ, "MHUB_DATABASE_URL": settings.dsn(), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("meterhub")),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _dlt645_meter(db: asyncpg.Connection, address: str, bus: str) -> tuple[int, str]:
    (meter,) = await create_meters(db, 1)
    await db.execute(
        "UPDATE meters SET protocol = 'dlt645', address = $2::jsonb WHERE id = $1",
        meter,
        orjson.dumps({"address": address, "bus": bus}).decode(),
    )
    code: str = await db.fetchval("SELECT code FROM meters WHERE id = $1", meter)
    return meter, code


async def test_the_check_shows_values_refusals_and_the_answered_address(
    settings: Settings, db: asyncpg.Connection
) -> None:
    faults = MeterFaults(no_data=frozenset({POWER_FACTOR_DI}))
    bus = SimulatedBus([Dlt645Meter(ADDRESS, faults=faults)], provider=LinearProvider())
    async with Dlt645GatewaySimulator(bus) as gw:
        url = gw.url
        meter, code = await _dlt645_meter(db, ADDRESS, url)
        status, out = await _meterhub(settings, "terminals", "check", code, "--timeout", "0.5")
        json_status, json_out = await _meterhub(
            settings, "terminals", "check", str(meter), "--json", "--timeout", "0.5"
        )
    assert status == 0, out
    assert f"meter {meter} (dlt645) on {url}: read" in out
    assert "energy" in out and f"refused: di {POWER_FACTOR_DI:08X}" in out and "NO_DATA" in out
    assert "read-address command (0x13) as: 000102030425" in out
    assert "on the wire 25 04 03 02 01 00" in out and "most significant pair first" in out
    assert json_status == 0, json_out
    report: dict[str, Any] = orjson.loads(json_out)
    assert report["meter_id"] == meter and report["ok"] is True
    assert report["address"]["answered"] == ADDRESS and report["address"]["matches"] is True
    assert not await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter)


async def test_a_wrong_address_fails_and_names_the_one_the_meter_answers(
    settings: Settings, db: asyncpg.Connection
) -> None:
    bus = SimulatedBus([Dlt645Meter(ADDRESS)], provider=LinearProvider())
    async with Dlt645GatewaySimulator(bus) as gw:
        _, code = await _dlt645_meter(db, "000102030426", gw.url)
        status, out = await _meterhub(settings, "terminals", "check", code, "--timeout", "0.3")
    assert status == 1, out
    assert "nothing read" in out and "RequestTimeoutError" in out
    assert "the meter answers as 000102030425: register that address" in out


async def test_an_unknown_meter_is_an_error(settings: Settings) -> None:
    status, out = await _meterhub(settings, "terminals", "check", "NO-SUCH-METER")
    assert status == 1 and "no meter with the id or code 'NO-SUCH-METER'" in out

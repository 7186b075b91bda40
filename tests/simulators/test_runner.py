"""`meterhub simulate register` and `run`: a small city through the registry and real sockets.

The city: four firms; a Modbus gateway (two meters), a DL/T 645 gateway (two meters), an
MQTT gateway (an electricity and a water meter, and one installed only later) and two
grid-feed meters, one of them replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from collectors.dlt645.errors import ChecksumError
from collectors.dlt645.reader import read_meter as read_dlt645
from collectors.dlt645.transport import TcpBus
from collectors.errors import CollectorError, RequestTimeoutError
from collectors.modbus import MeterModel, decode_block, encode_points, load_model, plan_blocks
from collectors.modbus.client import LinkOptions
from collectors.modbus.pool import LinkPool
from collectors.modbus.reader import read_meter as read_modbus
from meterhub.migrate import migrate
from meterhub.reading import Utility
from meterhub.settings import Settings
from meterhub.uscc import ALPHABET, check_character
from simulators.broker_users import create_broker_users, mqtt_gateways
from simulators.config import (
    CityConfig,
    Dlt645Address,
    GatewaySpec,
    GridFeedAddress,
    ModbusAddress,
    MqttAddress,
)
from simulators.errors import SimulatorError
from simulators.faults import CorruptChecksum, GatewayOffline, NoAnswer, Replacement
from simulators.fleet import CityFleet
from simulators.mqtt_publisher import gateway_password
from simulators.registry import register_city
from simulators.runner import CityRunner
from simulators.schedule import floor_tick
from tests.simulators.core_builders import at, firm_spec, meter_spec
from tests.support import mqtt_ingest

#: The simulation's fixed clock: a Monday morning, in the past (readings are not "future").
NOW = at(2026, 11, 2, 10, 7, 13).replace(microsecond=250_000)
INSTALLED = at(2026, 1, 5, 9)
SWAPPED = at(2026, 6, 1, 14)
QUARTER = timedelta(minutes=15)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (probes stay open until all are chosen, so the kernel
    cannot hand out the same one twice)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _credit_code(tag: str, n: int) -> str:
    digest = hashlib.sha256(f"{tag}:{n}".encode()).digest()
    body = "91330782MA" + "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:7])
    return body + check_character(body)


def small_city(tag: str | None = None, *, seed: int = 11, faults: bool = False) -> CityConfig:
    """Four firms, one gateway of each protocol, two grid-feed meters; codes carry ``tag``."""
    tag = tag or uuid.uuid4().hex[:8]
    mqtt_id = f"mht-sim-{tag}"
    common = {"installed_at": INSTALLED}

    def code(kind: str, n: int) -> str:
        return f"SIM{tag}-{kind}-{n}"

    sdm = meter_spec(
        id=1, code=code("E", 1), protocol="modbus", address=ModbusAddress("mb-1", 3),
        model="eastron_sdm630", ct=20.0, rated_power=100.0, **common,
        faults=(NoAnswer(),) if faults else (),
    )  # fmt: skip
    chint = meter_spec(
        id=2, code=code("E", 2), protocol="modbus", address=ModbusAddress("mb-1", 5),
        model="chint_dtsu666", rated_power=40.0, **common,
    )  # fmt: skip
    hv = meter_spec(
        id=3, code=code("E", 3), address=Dlt645Address("dlt-1", "202501000003"),
        model="DSSD331", ct=10.0, pt=100.0, rated_power=567.0, **common,
    )  # fmt: skip
    direct = meter_spec(
        id=4, code=code("E", 4), address=Dlt645Address("dlt-1", "202501000004"),
        model="DTZY341", rated_power=50.0, **common,
        faults=(CorruptChecksum(),) if faults else (),
    )  # fmt: skip
    power = meter_spec(
        id=5, code=code("E", 5), protocol="mqtt", address=MqttAddress(mqtt_id, 1),
        rated_power=80.0, **common,
    )  # fmt: skip
    water = meter_spec(
        id=6, code=code("W", 6), utility=Utility.WATER, protocol="mqtt",
        address=MqttAddress(mqtt_id, 2), model="LXSG-50E", rated_power=8.0, **common,
    )  # fmt: skip
    later = meter_spec(
        id=7, code=code("E", 7), protocol="mqtt", address=MqttAddress(mqtt_id, 3),
        installed_at=at(2026, 12, 24), rated_power=30.0,
    )  # fmt: skip
    fed = meter_spec(
        id=8, code=code("G", 8), protocol="grid-feed", address=GridFeedAddress("sgcc-yiwu"),
        rated_power=300.0, ct=10.0, **common,
    )  # fmt: skip
    swapped = meter_spec(
        id=9, code=code("G", 9), protocol="grid-feed", address=GridFeedAddress("sgcc-yiwu"),
        rated_power=60.0, faults=(Replacement(at=SWAPPED, initial_energy=5.0),), **common,
    )  # fmt: skip
    firms = (
        firm_spec(sdm, chint, credit_code=_credit_code(tag, 1), name=f"模拟饰品{tag}"),
        firm_spec(
            hv,
            direct,
            credit_code=_credit_code(tag, 2),
            name=f"模拟印染{tag}",
            industry="C1713",
            town="佛堂",
        ),
        firm_spec(
            power,
            water,
            later,
            credit_code=_credit_code(tag, 3),
            name=f"模拟电池{tag}",
            industry="C3841",
            above_scale=True,
            tags=("d-class",),
        ),
        firm_spec(
            fed,
            swapped,
            credit_code=_credit_code(tag, 4),
            name=f"模拟纺织{tag}",
            industry="C1761",
            land_mu=None,
        ),
    )
    ports = free_ports(2)
    return CityConfig(
        seed=seed,
        name=f"sim-{tag}",
        gateways=(
            GatewaySpec("mb-1", "modbus", port=ports[0]),
            GatewaySpec("dlt-1", "dlt645", port=ports[1]),
            GatewaySpec(mqtt_id, "mqtt"),
        ),
        firms=firms,
    )


# -- register ----------------------------------------------------------------------------


async def _rows(db: asyncpg.Connection, city: CityConfig) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT m.code, f.credit_code, m.utility, m.protocol, m.address, m.model, m.ct_ratio, "
        "m.pt_ratio, m.max_power, m.installed_at, m.removed_at, r.code AS replaces, "
        "extract(epoch FROM m.poll_interval)::int AS poll "
        "FROM meters m JOIN firms f ON f.id = m.firm_id LEFT JOIN meters r "
        "ON r.id = m.replaces_meter_id WHERE f.credit_code = ANY($1::text[]) ORDER BY m.code",
        [f.credit_code for f in city.firms],
    )


@pytest.fixture
async def own_db(
    scratch_database: str, base_settings: Settings
) -> AsyncIterator[asyncpg.Connection]:
    """A migrated database of this test's own: the session's holds meters earlier tests
    registered at 127.0.0.1 ports the kernel may hand out again, a clash for this city."""
    conn = await asyncpg.connect(scratch_database)
    try:
        await migrate(conn, base_settings.migrations_dir)
        yield conn
    finally:
        await conn.close()


@pytest.mark.integration
async def test_register_puts_exactly_the_city_in_the_registry(own_db: asyncpg.Connection) -> None:
    db = own_db
    city = small_city()
    summary = await register_city(db, city, as_of=NOW)
    assert summary.firms == {"added": 4}
    assert summary.moved == summary.clashes == []
    assert {p: dict(c) for p, c in summary.meters.items()} == {
        "modbus": {"added": 2},
        "dlt645": {"added": 2},
        "mqtt": {"added": 2, "later": 1},
        "grid-feed": {"added": 3},
    }
    firms = await db.fetch(
        "SELECT credit_code, name, industry, town, land_mu, above_scale, tags FROM firms "
        "WHERE credit_code = ANY($1::text[]) ORDER BY credit_code",
        [f.credit_code for f in city.firms],
    )
    assert [tuple(r) for r in firms] == [
        (f.credit_code, f.name, f.industry, f.town,
         None if f.land_mu is None else Decimal(str(f.land_mu)), f.above_scale, list(f.tags))
        for f in sorted(city.firms, key=lambda f: f.credit_code)
    ]  # fmt: skip
    gw = {g.id: g for g in city.gateways}
    bus, port = f"tcp://127.0.0.1:{gw['dlt-1'].port}", gw["mb-1"].port
    codes = {m.id: m.code for _, m in city.meters()}
    credit = [f.credit_code for f in city.firms]
    expected = [
        (codes[1], credit[0], "modbus", {"host": "127.0.0.1", "port": port, "unit_id": 3},
         "eastron_sdm630", 20, 1, 5, INSTALLED, None, None),
        (codes[2], credit[0], "modbus", {"host": "127.0.0.1", "port": port, "unit_id": 5},
         "chint_dtsu666", 1, 1, 40, INSTALLED, None, None),
        (codes[3], credit[1], "dlt645", {"address": "202501000003", "bus": bus},
         "DSSD331", 10, 100, Decimal("0.567"), INSTALLED, None, None),
        (codes[4], credit[1], "dlt645", {"address": "202501000004", "bus": bus},
         "DTZY341", 1, 1, 50, INSTALLED, None, None),
        (codes[5], credit[2], "mqtt", {"gateway_id": city.gateways[2].id, "channel": 1},
         "DTZY341", 1, 1, 80, INSTALLED, None, None),
        (codes[6], credit[2], "mqtt", {"gateway_id": city.gateways[2].id, "channel": 2},
         "LXSG-50E", 1, 1, 8, INSTALLED, None, None),
        (codes[8], credit[3], "grid-feed", {"feed": "sgcc-yiwu"},
         "DTZY341", 10, 1, 30, INSTALLED, None, None),
        (codes[9], credit[3], "grid-feed", {"feed": "sgcc-yiwu"},
         "DTZY341", 1, 1, 60, INSTALLED, SWAPPED, None),
        (f"{codes[9]}-R1", credit[3], "grid-feed", {"feed": "sgcc-yiwu"},
         "DTZY341", 1, 1, 60, SWAPPED, None, codes[9]),
    ]  # fmt: skip
    rows = await _rows(db, city)
    got = [
        (r["code"], r["credit_code"], r["protocol"], json.loads(r["address"]), r["model"],
         r["ct_ratio"], r["pt_ratio"], r["max_power"], r["installed_at"], r["removed_at"],
         r["replaces"])
        for r in rows
    ]  # fmt: skip
    assert got == sorted(expected)
    assert {(r["utility"], r["poll"]) for r in rows} == {("electricity", 900), ("water", 900)}

    again = await register_city(db, city, as_of=NOW)
    assert again.firms == {"unchanged": 4}
    assert sum(c["unchanged"] for c in again.meters.values()) == 9
    assert [tuple(r) for r in await _rows(db, city)] == [tuple(r) for r in rows]
    assert again.meter_ids == summary.meter_ids

    later = await register_city(db, city, as_of=at(2026, 12, 25))
    assert later.meters["mqtt"] == {"unchanged": 2, "added": 1}


def test_mqtt_gateways_needing_a_broker_user() -> None:
    city = small_city("abcdef12")
    assert mqtt_gateways(city) == ["mht-sim-abcdef12"]
    assert gateway_password(11, "mht-sim-abcdef12") == gateway_password(11, "mht-sim-abcdef12")
    assert gateway_password(11, "mht-sim-abcdef12") != gateway_password(12, "mht-sim-abcdef12")


# -- run: bus gateways -------------------------------------------------------------------


def _through_registers(model: MeterModel, values: dict[str, float]) -> dict[str, float]:
    """What a perfect client decodes from ``values`` encoded with ``model``'s register map."""
    encoded = encode_points(model, {p.field: values[p.field] for p in model.points})
    out: dict[str, float] = {}
    for block in plan_blocks(model):
        words = [0] * block.count
        for (fc, address), point_words in encoded.items():
            if fc == block.function_code and block.address <= address < block.address + block.count:
                words[address - block.address : address - block.address + len(point_words)] = (
                    point_words
                )
        out.update(decode_block(block, words))
    return out


@pytest.mark.integration
async def test_bus_gateways_answer_the_collectors_readers_with_the_simulated_values() -> None:
    fleet = CityFleet(small_city())
    sims = {m.spec.id: m for m in fleet.meters}
    runner = CityRunner(fleet, clock=lambda: NOW, protocols={"modbus", "dlt645"})
    async with runner, LinkPool(LinkOptions(timeout=2.0, retries=0)) as pool:
        assert [(e.gateway, e.protocol, e.meters) for e in runner.endpoints] == [
            ("mb-1", "modbus", 2),
            ("dlt-1", "dlt645", 2),
        ]
        url = runner.modbus["mb-1"].url
        for unit, meter_id in ((3, 1), (5, 2)):
            model = load_model(sims[meter_id].spec.model)
            got = await read_modbus(pool, model=model, unit_id=unit, url=url)
            assert got.values == _through_registers(model, sims[meter_id].values(NOW))
            assert not got.garbage and not got.missing
        async with TcpBus("127.0.0.1", runner.dlt645["dlt-1"].port, gap=0) as bus:
            for address, meter_id in (("202501000003", 3), ("202501000004", 4)):
                values = await read_dlt645(bus, address, timeout=2.0, retries=0)
                assert dict(values.fields) == sims[meter_id].values(NOW)
                assert values.clock == NOW.replace(microsecond=0)
                assert not values.missing


@pytest.mark.integration
async def test_meter_faults_show_on_the_wire() -> None:
    fleet = CityFleet(small_city(faults=True))
    runner = CityRunner(fleet, clock=lambda: NOW, protocols={"modbus", "dlt645"})
    async with runner, LinkPool(LinkOptions(timeout=0.3, retries=0)) as pool:
        sdm = load_model("eastron_sdm630")
        with pytest.raises(RequestTimeoutError):  # no_answer
            await read_modbus(pool, model=sdm, unit_id=3, url=runner.modbus["mb-1"].url)
        async with TcpBus("127.0.0.1", runner.dlt645["dlt-1"].port, gap=0) as bus:
            with pytest.raises(ChecksumError):  # corrupt_checksum
                await read_dlt645(bus, "202501000004", timeout=1.0, retries=0)
            assert (await read_dlt645(bus, "202501000003", timeout=1.0, retries=0)).fields


@pytest.mark.integration
async def test_a_taken_port_is_a_clear_error() -> None:
    city = small_city()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        gateways = (replace(city.gateways[0], port=port), *city.gateways[1:])
        runner = CityRunner(CityFleet(replace(city, gateways=gateways)), clock=lambda: NOW)
        with pytest.raises(
            SimulatorError, match=f"gateway mb-1: cannot listen on 127.0.0.1:{port}"
        ):
            await runner.start()


# -- run: MQTT gateways ------------------------------------------------------------------


@pytest.fixture
def worker_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"spool_dir": tmp_path / "spool", "batch_max_age": 0.02})


async def _wait_rows(
    db: asyncpg.Connection, ids: list[int], count: int, *, timeout: float = 30.0
) -> list[asyncpg.Record]:
    async with asyncio.timeout(timeout):
        while True:
            rows = await db.fetch(
                "SELECT meter_id, ts, energy, power, source FROM readings "
                "WHERE meter_id = ANY($1::bigint[]) ORDER BY meter_id, ts",
                ids,
            )
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_mqtt_gateways_publish_each_channel_at_the_tick(
    db: asyncpg.Connection, worker_settings: Settings
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    (gateway_id,) = mqtt_gateways(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    assert create_broker_users(city, worker_settings) == [gateway_id]
    broker = f"mqtt://127.0.0.1:{worker_settings.mqtt_port}"
    async with (
        mqtt_ingest(worker_settings, gateway_id),
        CityRunner(fleet, clock=lambda: NOW, mqtt_url=broker, protocols={"mqtt"}) as runner,
    ):
        assert [(e.protocol, e.where, e.meters) for e in runner.endpoints] == [
            ("mqtt", f"meterhub/v1/{gateway_id}/readings", 3)
        ]
        meters = [m for m in fleet.on(gateway_id) if m.spec.code in ids]
        rows = await _wait_rows(db, [ids[m.spec.code] for m in meters], 2)  # the first tick
    tick = floor_tick(NOW, QUARTER)
    assert [(r["ts"], r["energy"], r["power"], r["source"]) for r in rows] == [
        (tick, m.snapshot(tick).energy, m.snapshot(tick).power, f"mqtt:{gateway_id}")
        for m in meters
    ]


def test_the_first_tick_is_the_latest_past_one() -> None:
    assert floor_tick(NOW, QUARTER) == at(2026, 11, 2, 10, 0)
    assert floor_tick(at(2026, 11, 2, 10), QUARTER) == at(2026, 11, 2, 10)
    assert floor_tick(NOW, timedelta(days=1)) == at(2026, 11, 2)
    assert isinstance(NOW, datetime)


@pytest.mark.integration
async def test_gateway_outages_drop_connections_until_the_window_ends() -> None:
    city = small_city()
    outage = GatewayOffline(start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    gateways = tuple(replace(g, faults=(outage,)) for g in city.gateways[:2])
    now = [NOW]
    fleet = CityFleet(replace(city, gateways=(*gateways, city.gateways[2])))
    runner = CityRunner(fleet, clock=lambda: now[0], protocols={"modbus", "dlt645"})
    options = LinkOptions(timeout=0.5, retries=0, reconnect_min=0.05)
    sdm = load_model("eastron_sdm630")
    async with runner, LinkPool(options) as pool:
        url, port = runner.modbus["mb-1"].url, runner.dlt645["dlt-1"].port
        async with TcpBus("127.0.0.1", port, gap=0, connect_timeout=1.0) as bus:
            with pytest.raises(CollectorError):
                await read_modbus(pool, model=sdm, unit_id=3, url=url)
            with pytest.raises(CollectorError):
                await read_dlt645(bus, "202501000003", timeout=0.5, retries=0)
            now[0] = NOW + timedelta(hours=2)
            await asyncio.sleep(1.2)  # the gateway looks at its outage window every second
            assert (await read_modbus(pool, model=sdm, unit_id=3, url=url)).values
            assert (await read_dlt645(bus, "202501000003", timeout=1.0, retries=1)).fields


@pytest.mark.integration
async def test_register_names_what_it_takes_over_from_another_city(
    db: asyncpg.Connection,
) -> None:
    first = small_city()
    await register_city(db, first, as_of=NOW)
    theirs = {m.id: m.code for _, m in first.meters()}
    second = small_city()
    firm = second.firms[0]
    taken = replace(firm.meters[0], code=theirs[1])  # an asset number of the first city
    firms = (replace(firm, meters=(taken, firm.meters[1])), *second.firms[1:])
    second = replace(second, gateways=first.gateways[:2] + second.gateways[2:], firms=firms)
    summary = await register_city(db, second, as_of=NOW)
    assert summary.moved == [theirs[1]]
    assert [c.split(" at ")[0] for c in summary.clashes] == [theirs[2], theirs[3], theirs[4]]

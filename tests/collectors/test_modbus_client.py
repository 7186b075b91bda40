"""`ModbusLink`, `LinkPool` and `read_meter` against the simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import socket
import struct
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from collectors.errors import RequestTimeoutError, TransportError
from collectors.modbus import Block, MeterModel, Point, decode_block, load_model, plan_blocks
from collectors.modbus.client import LinkOptions, ModbusExceptionError, ModbusLink
from collectors.modbus.endpoint import Endpoint
from collectors.modbus.pool import LinkPool
from collectors.modbus.reader import read_meter
from simulators.modbus_server import Fault, ModbusMeterSimulator

MODELS = {n: load_model(n) for n in ("eastron_sdm630", "chint_dtsu666", "acrel_adl400")}
SDM630 = MODELS["eastron_sdm630"]
#: Generous for a loaded 2-core machine; negative cases use their own short timeouts.
OPTIONS = LinkOptions(timeout=3.0, retries=0, connect_timeout=3.0, reconnect_min=0.05)


def meter_values(unit: int, now: datetime | None = None) -> dict[str, float]:
    """Distinct values per unit id, so a reply given to the wrong unit shows."""
    return {
        "energy": 12345.6 + unit,
        "power": 3.25 + unit / 8,
        "voltage_a": 230.1 + unit / 10,
        "voltage_b": 229.7,
        "voltage_c": 231.3,
        "current_a": 5.123 + unit / 100,
        "current_b": 4.9,
        "current_c": 5.05,
        "power_factor": 0.97,
    }


def rounded(point: Point, value: float) -> float:
    """What a register of `point` can carry of `value`: float32 or integer rounding, then scale."""
    raw = value / point.scale
    if point.type == "float32":
        return float(struct.unpack(">f", struct.pack(">f", raw))[0]) * point.scale
    return float(round(raw)) * point.scale


def expected(model: MeterModel, unit: int) -> dict[str, float]:
    values = meter_values(unit)
    return {p.field: rounded(p, values[p.field]) for p in model.points}


def connects(outcome: str) -> float:
    value = REGISTRY.get_sample_value("meterhub_modbus_connects_total", {"outcome": outcome})
    return value or 0.0


@pytest.fixture
async def sim() -> AsyncIterator[ModbusMeterSimulator]:
    meters = {1: SDM630, 2: MODELS["chint_dtsu666"], 3: MODELS["acrel_adl400"]}
    async with ModbusMeterSimulator(meters, provider=meter_values) as sim:
        yield sim


@pytest.mark.parametrize(
    ("unit", "name"), [(1, "eastron_sdm630"), (2, "chint_dtsu666"), (3, "acrel_adl400")]
)
async def test_each_model_reads_exactly_in_planned_requests(
    sim: ModbusMeterSimulator, unit: int, name: str
) -> None:
    model = MODELS[name]
    async with LinkPool(OPTIONS) as pool:
        got = await read_meter(pool, model=model, unit_id=unit, url=sim.url, ct=40, pt=100)
    assert got.values == expected(model, unit)
    assert (got.garbage, got.missing, got.errors) == ({}, (), ())
    assert sim.requests[unit] == len(plan_blocks(model))
    assert (got.unit_id, got.url, got.model, got.multiplier) == (unit, sim.url, model.name, 4000)


async def test_concurrent_unit_ids_share_one_connection_one_request_at_a_time() -> None:
    units = range(1, 41)
    arrivals: list[float] = []
    hold = 0.01

    def faults(unit: int, now: datetime) -> Fault:
        arrivals.append(time.monotonic())
        return Fault.late(hold)  # each answer takes `hold`: overlapping requests would show

    async with (
        ModbusMeterSimulator(
            dict.fromkeys(units, SDM630), provider=meter_values, faults=faults
        ) as sim,
        ModbusLink(sim.url, OPTIONS) as link,
    ):
        before = connects("ok")
        results = await asyncio.gather(*(read_meter(link, model=SDM630, unit_id=u) for u in units))
    assert [r.values for r in results] == [expected(SDM630, u) for u in units]
    assert len(arrivals) == 2 * len(units)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= hold - 0.001
    assert connects("ok") - before == 1


async def test_unconfigured_unit_is_silent_and_retries_are_explicit(
    sim: ModbusMeterSimulator,
) -> None:
    block = plan_blocks(SDM630)[0]
    options = LinkOptions(timeout=0.2, retries=2, reconnect_min=0.05)
    async with ModbusLink(sim.url, options) as link:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await link.read(block, unit_id=99)
        assert 0.59 <= time.monotonic() - started < 3.0
        assert sim.requests[99] == 3  # the first attempt and two retries
        words = await link.read(block, unit_id=1)  # the link still works for the others
    assert decode_block(block, words) == {
        p.field: expected(SDM630, 1)[p.field] for p in block.points
    }


async def test_illegal_address_is_an_exception_response(sim: ModbusMeterSimulator) -> None:
    async with ModbusLink(sim.url, OPTIONS) as link:
        with pytest.raises(ModbusExceptionError) as caught:
            await link.read(Block(4, 0x9000, 2, ()), unit_id=1)
        assert (caught.value.exception_code, caught.value.exception_name) == (
            2,
            "ILLEGAL_DATA_ADDRESS",
        )
        assert caught.value.code == "modbus_exception"
        with pytest.raises(ModbusExceptionError) as too_long:
            await link.read(Block(4, 0, 81, ()), unit_id=1)  # SDM630 allows 80 per request
        assert too_long.value.exception_name == "ILLEGAL_DATA_VALUE"
        got = await read_meter(link, model=SDM630, unit_id=1)
    assert got.values == expected(SDM630, 1)


async def test_link_reconnects_after_the_server_restarts(sim: ModbusMeterSimulator) -> None:
    async with ModbusLink(sim.url, OPTIONS) as link:
        assert (await read_meter(link, model=SDM630, unit_id=1)).values == expected(SDM630, 1)
        await sim.stop()
        with pytest.raises(TransportError):
            await read_meter(link, model=SDM630, unit_id=1)
        assert not link.connected
        await sim.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                got = await read_meter(link, model=SDM630, unit_id=1)
                break
            except TransportError:
                assert time.monotonic() < deadline, "no reconnect within 10 s"
                await asyncio.sleep(0.05)
        assert got.values == expected(SDM630, 1)
        assert link.connected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connection_fails_fast_during_backoff() -> None:
    options = LinkOptions(timeout=1.0, retries=3, reconnect_min=30.0)
    block = plan_blocks(SDM630)[0]
    before = connects("failed")
    async with ModbusLink(f"tcp://127.0.0.1:{free_port()}", options) as link:
        with pytest.raises(TransportError, match="cannot connect"):
            await link.read(block, unit_id=1)
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(TransportError, match="link down"):
                await link.read(block, unit_id=1)
        assert time.monotonic() - started < 1.0
    assert connects("failed") - before == 1


def test_pool_keeps_one_link_per_endpoint() -> None:
    pool = LinkPool(OPTIONS)
    a = pool.link("tcp://127.0.0.1:502")
    assert pool.link("tcp://127.0.0.1") is a
    assert pool.link("TCP://127.0.0.1:502/") is a
    b = pool.link("rtu+tcp://127.0.0.1:502")
    assert b is not a and b.endpoint.rtu_framing
    assert len(pool) == 2
    assert a.options is OPTIONS


async def test_rtu_over_tcp_reads_exactly() -> None:
    meters: Mapping[int, MeterModel] = {5: SDM630, 6: MODELS["chint_dtsu666"]}
    async with (
        ModbusMeterSimulator(meters, provider=meter_values, framing="rtu") as sim,
        LinkPool(OPTIONS) as pool,
    ):
        assert sim.url.startswith("rtu+tcp://")
        for unit, model in meters.items():
            got = await read_meter(pool, model=model, unit_id=unit, url=sim.url)
            assert got.values == expected(model, unit)
        link = pool.link(sim.url)
        link_options = LinkOptions(timeout=0.2, retries=0)
        async with ModbusLink(sim.url, link_options) as quick:
            with pytest.raises(RequestTimeoutError):
                await quick.read(plan_blocks(SDM630)[0], unit_id=7)
        assert link.connected


async def test_serial_client_path_over_a_pyserial_socket_url() -> None:
    """The serial client (RTU framer, pyserial transport) against the RTU-over-TCP simulator."""
    async with ModbusMeterSimulator({9: SDM630}, provider=meter_values, framing="rtu") as sim:
        endpoint = Endpoint("serial", f"socket://127.0.0.1:{sim.port}", 0, baudrate=9600)
        async with ModbusLink(endpoint, OPTIONS) as link:
            got = await read_meter(link, model=SDM630, unit_id=9)
    assert got.values == expected(SDM630, 9)
    assert link.url.startswith("serial://socket://127.0.0.1:")


async def test_gap_spaces_requests_on_a_slow_bus() -> None:
    arrivals: list[float] = []

    def faults(unit: int, now: datetime) -> None:
        arrivals.append(time.monotonic())

    options = dataclasses.replace(OPTIONS, gap=0.1)
    sim = ModbusMeterSimulator({1: SDM630}, provider=meter_values, faults=faults)
    async with sim, ModbusLink(sim.url, options) as link:
        for _ in range(2):
            await read_meter(link, model=SDM630, unit_id=1)
    assert len(arrivals) == 4
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.1 - 0.001


async def test_timeouts_in_a_row_reopen_the_connection(sim: ModbusMeterSimulator) -> None:
    options = LinkOptions(timeout=0.1, retries=0, drop_after_timeouts=2, reconnect_min=0.05)
    block = plan_blocks(SDM630)[0]
    async with ModbusLink(sim.url, options) as link:
        before = connects("ok")
        with pytest.raises(RequestTimeoutError):
            await link.read(block, unit_id=42)
        assert link.connected
        with pytest.raises(RequestTimeoutError):
            await link.read(block, unit_id=42)
        assert not link.connected
        assert len(await link.read(block, unit_id=1)) == block.count
        assert connects("ok") - before == 2


@pytest.mark.parametrize(
    "bad", [{"timeout": 0}, {"connect_timeout": -1}, {"reconnect_min": 0}, {"retries": -1}]
)
def test_link_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LinkOptions(**bad)  # type: ignore[arg-type]

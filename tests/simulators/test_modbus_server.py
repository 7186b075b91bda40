"""`ModbusMeterSimulator`: what a plain pymodbus client sees of it over real TCP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from pymodbus.client import AsyncModbusTcpClient

from collectors.errors import RequestTimeoutError
from collectors.modbus import load_model, plan_blocks
from collectors.modbus.client import LinkOptions, ModbusLink
from collectors.modbus.reader import read_meter
from simulators.line_speed import modbus_rtu
from simulators.modbus_server import Fault, LinearProvider, ModbusMeterSimulator

SDM630 = load_model("eastron_sdm630")
ADL400 = load_model("acrel_adl400")
OPTIONS = LinkOptions(timeout=3.0, retries=0, reconnect_min=0.05)


def test_linear_provider_grows_energy_at_constant_power() -> None:
    epoch = datetime(2026, 3, 1, tzinfo=UTC)
    provider = LinearProvider(epoch=epoch)
    start, later = provider(7, epoch), provider(7, epoch + timedelta(hours=2))
    assert start["power"] == later["power"] == 8.0
    assert start["energy"] == 1007.0
    assert later["energy"] == 1007.0 + 16.0
    assert later["voltage_a"] == later["voltage_c"] == 230.0
    assert later["current_b"] == pytest.approx(8000 / (3 * 230 * 0.95))
    assert provider(7, epoch - timedelta(hours=1))["energy"] == 1007.0  # never runs backwards


async def test_default_provider_through_the_wire() -> None:
    async with (
        ModbusMeterSimulator({7: SDM630, 8: ADL400}) as sim,
        ModbusLink(sim.url, OPTIONS) as link,
    ):
        first = await read_meter(link, model=SDM630, unit_id=7)
        await asyncio.sleep(0.5)
        second = await read_meter(link, model=SDM630, unit_id=7)
        adl = await read_meter(link, model=ADL400, unit_id=8)
    assert second.values["power"] == 8.0
    assert second.values["voltage_b"] == 230.0
    # 8 kW for 0.5 s is 0.0011 kWh: visible in a float32 near 1007 kWh (step 0.00006)
    assert 1007.0 <= first.values["energy"] < second.values["energy"] < 1007.1
    assert adl.values["energy"] == pytest.approx(1008.0)  # uint32 in 0.1 kWh


def test_unit_ids_must_be_modbus_addresses() -> None:
    for bad in (0, 248):
        with pytest.raises(ValueError, match=r"1\.\.247"):
            ModbusMeterSimulator({bad: SDM630})


async def test_writes_and_bit_reads_are_refused() -> None:
    async with ModbusMeterSimulator({1: SDM630}) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, retries=0, reconnect_delay=0)
        try:
            assert await client.connect()
            written = await client.write_register(0, 1, device_id=1)
            coils = await client.read_coils(0, count=1, device_id=1)
            holding = await client.read_holding_registers(0, count=2, device_id=1)
        finally:
            client.close()
    assert [r.exception_code for r in (written, coils, holding)] == [1, 1, 2]


async def test_requests_are_counted_per_unit_even_unanswered() -> None:
    async with (
        ModbusMeterSimulator({1: SDM630}) as sim,
        ModbusLink(sim.url, LinkOptions(timeout=0.2, retries=0)) as link,
    ):
        await read_meter(link, model=SDM630, unit_id=1)
        with pytest.raises(RequestTimeoutError):
            await read_meter(link, model=SDM630, unit_id=200)
    assert sim.requests == {1: len(plan_blocks(SDM630)), 200: 1}


async def test_stop_abandons_pending_late_answers() -> None:
    sim = ModbusMeterSimulator({1: SDM630}, faults=lambda unit, now: Fault.late(30.0))
    async with sim, ModbusLink(sim.url, LinkOptions(timeout=0.2, retries=0)) as link:
        with pytest.raises(RequestTimeoutError):
            await read_meter(link, model=SDM630, unit_id=1)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # the 30 s answer was cancelled, not awaited


async def test_restart_keeps_the_port_and_taken_ports_fail() -> None:
    sim = ModbusMeterSimulator({1: SDM630})
    await sim.start()
    try:
        port = sim.port
        await sim.stop()
        await sim.start()
        assert sim.port == port
        with pytest.raises(OSError, match="cannot listen"):
            await ModbusMeterSimulator({1: SDM630}, port=port).start()
    finally:
        await sim.stop()


async def test_unencodable_garbage_answers_device_failure() -> None:
    """NaN fits only float32 registers: ADL400's energy is a uint32, so the meter fails."""
    sim = ModbusMeterSimulator({1: ADL400}, faults=lambda u, n: Fault.garbage({"energy": -5.0}))
    async with sim, ModbusLink(sim.url, OPTIONS) as link:
        got = await read_meter(link, model=ADL400, unit_id=1)
    energy_block = next(b for b in plan_blocks(ADL400) if b.points[-1].field == "energy")
    assert "energy" in got.missing
    assert [getattr(e, "exception_code", None) for e in got.errors] == [4]
    assert len(got.missing) == len(energy_block.points)


async def test_at_line_speed_the_bus_behind_the_gateway_carries_one_request_at_a_time() -> None:
    line = modbus_rtu(1200, turnaround=0.05)
    on_bus: list[bool] = []
    sim = ModbusMeterSimulator({1: ADL400, 2: ADL400}, line=line)

    def values(unit: int, now: datetime) -> dict[str, float]:
        on_bus.append(sim.bus.locked())
        return LinearProvider()(unit, now)

    sim.provider = values
    block = plan_blocks(ADL400)[0]
    async with sim, ModbusLink(sim.url, OPTIONS) as a, ModbusLink(sim.url, OPTIONS) as b:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first, second = await asyncio.gather(a.read(block, unit_id=1), b.read(block, unit_id=2))
        took = loop.time() - started
    assert len(first) == len(second) == block.count
    assert on_bus == [True, True]
    one = line.exchange(8, 5 + 2 * block.count)  # RTU frames: unit, fc, data, CRC
    # The second waited for the first (one bus, not two); its own trailing gap is not waited.
    assert took >= 2 * one - line.gap - 0.005

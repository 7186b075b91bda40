"""Simulated meter faults seen through `ModbusLink` and `read_meter`, over real TCP."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import socket
import struct
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from collectors.errors import CollectorError, RequestTimeoutError, TransportError
from collectors.modbus import load_model, parse_model, plan_blocks
from collectors.modbus.client import (
    GatewayNoResponseError,
    LinkOptions,
    ModbusExceptionError,
    ModbusLink,
)
from collectors.modbus.pool import LinkPool
from collectors.modbus.reader import read_meter
from meterhub.reading import Reading
from simulators.modbus_server import Fault, ModbusMeterSimulator

SDM630 = load_model("eastron_sdm630")
OPTIONS = LinkOptions(timeout=3.0, retries=0, connect_timeout=3.0, reconnect_min=0.05)
#: One block: voltage_a at 0, energy at 2 (float32, input registers).
TINY = parse_model(
    {
        "name": "TINY",
        "manufacturer": "test",
        "function_code": 4,
        "word_order": "ABCD",
        "points": [
            {"field": "voltage_a", "address": 0, "type": "float32", "unit": "V"},
            {"field": "energy", "address": 2, "type": "float32", "unit": "kWh"},
        ],
    }
)
VALUES = {"voltage_a": 230.5, "energy": 100.25, "power": 7.5, "power_factor": 0.5}
VALUES |= {"voltage_b": 231.0, "voltage_c": 232.0, "current_a": 1.5, "current_b": 2.5}
VALUES |= {"current_c": 3.5}


def constant(unit: int, now: datetime) -> dict[str, float]:
    return VALUES  # every value is exact in float32


async def test_silent_meter_times_out_and_its_neighbours_still_answer() -> None:
    def faults(unit: int, now: datetime) -> Fault | None:
        return Fault.no_answer() if unit == 2 else None

    sim = ModbusMeterSimulator({1: SDM630, 2: SDM630}, provider=constant, faults=faults)
    async with sim, ModbusLink(sim.url, dataclasses.replace(OPTIONS, timeout=0.2)) as link:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await read_meter(link, model=SDM630, unit_id=2)
        assert time.monotonic() - started < 2.0
        assert sim.requests[2] == 1  # the read stops at the first silent block
        assert (await read_meter(link, model=SDM630, unit_id=1)).values == VALUES


async def test_a_late_answer_is_never_taken_for_the_next_one() -> None:
    delays = iter([0.8, 1.0])
    calls: Counter[int] = Counter()

    def provider(unit: int, now: datetime) -> dict[str, float]:
        calls[unit] += 1  # answer n carries voltage 100 + n
        return {"voltage_a": 100.0 + calls[unit], "energy": 5.0}

    def faults(unit: int, now: datetime) -> Fault:
        return Fault.late(next(delays, 0.0))

    sim = ModbusMeterSimulator({1: TINY}, provider=provider, faults=faults)
    async with sim, ModbusLink(sim.url, dataclasses.replace(OPTIONS, timeout=0.3)) as link:
        with pytest.raises(RequestTimeoutError):
            await read_meter(link, model=TINY, unit_id=1)  # answer 1 comes at 0.8 s
        link.options = dataclasses.replace(link.options, timeout=5.0)
        got = await read_meter(link, model=TINY, unit_id=1)  # pending while answer 1 lands
    assert got.values == {"voltage_a": 102.0, "energy": 5.0}


async def test_garbage_values_are_reported_and_good_fields_kept() -> None:
    def faults(unit: int, now: datetime) -> Fault:
        return Fault.garbage({"power": math.nan, "voltage_a": 1e12, "energy": math.inf})

    sim = ModbusMeterSimulator({1: SDM630}, provider=constant, faults=faults)
    async with sim, ModbusLink(sim.url, OPTIONS) as link:
        got = await read_meter(link, model=SDM630, unit_id=1)
    assert sorted(got.garbage) == ["energy", "power"]
    assert "non-finite float32" in got.garbage["power"]
    absurd = struct.unpack(">f", struct.pack(">f", 1e12))[0]
    good = {f: v for f, v in VALUES.items() if f not in ("power", "energy")}
    assert got.values == good | {"voltage_a": absurd}
    reading = got.to_reading(meter_id=17)
    assert (reading.meter_id, reading.power, reading.voltage_a) == (17, None, absurd)


async def test_gateway_offline_drops_connections_until_it_returns() -> None:
    offline = False
    sim = ModbusMeterSimulator({1: SDM630}, provider=constant, offline=lambda now: offline)
    options = dataclasses.replace(OPTIONS, retries=1)
    async with sim, ModbusLink(sim.url, options) as link:
        assert (await read_meter(link, model=SDM630, unit_id=1)).values == VALUES
        offline = True
        started = time.monotonic()
        with pytest.raises(TransportError, match="connection lost"):
            await read_meter(link, model=SDM630, unit_id=1)
        assert time.monotonic() - started < 2.0  # a dropped connection fails at once
        offline = False
        deadline = time.monotonic() + 10
        while True:
            try:
                got = await read_meter(link, model=SDM630, unit_id=1)
                break
            except TransportError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    assert got.values == VALUES


async def test_gateway_no_response_counts_as_a_timeout() -> None:
    sim = ModbusMeterSimulator(
        {1: SDM630}, provider=constant, faults=lambda unit, now: Fault.refuse(11)
    )
    async with sim, ModbusLink(sim.url, dataclasses.replace(OPTIONS, retries=1)) as link:
        with pytest.raises(GatewayNoResponseError) as caught:
            await read_meter(link, model=SDM630, unit_id=1)
    assert isinstance(caught.value, RequestTimeoutError)
    assert caught.value.exception_name == "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
    assert sim.requests[1] == 2  # retried like a timeout, and the read stops at block one


async def test_meter_refusing_every_block_raises() -> None:
    sim = ModbusMeterSimulator({1: SDM630}, provider=constant, faults=lambda u, n: Fault.refuse(4))
    async with sim, ModbusLink(sim.url, OPTIONS) as link:
        with pytest.raises(ModbusExceptionError) as caught:
            await read_meter(link, model=SDM630, unit_id=1)
    assert caught.value.exception_name == "SERVER_DEVICE_FAILURE"
    assert sim.requests[1] == len(plan_blocks(SDM630))


async def test_a_refused_block_leaves_its_fields_missing() -> None:
    """The collector's map has energy at 0x0048; this meter's firmware has no such register."""
    firmware = parse_model(
        {
            "name": "SDM630-old",
            "manufacturer": "Eastron",
            "function_code": 4,
            "word_order": "ABCD",
            "points": [
                {"field": "voltage_a", "address": 0, "type": "float32", "unit": "V"},
                {"field": "current_c", "address": 10, "type": "float32", "unit": "A"},
            ],
        }
    )
    sim = ModbusMeterSimulator({1: firmware}, provider=constant)
    async with sim, ModbusLink(sim.url, OPTIONS) as link:
        got = await read_meter(link, model=SDM630, unit_id=1)
    first, second = plan_blocks(SDM630)
    assert set(got.values) == {p.field for p in first.points}
    assert (got.values["voltage_a"], got.values["current_c"]) == (230.5, 3.5)
    assert got.values["voltage_b"] == 0.0  # inside the block, but not in this firmware
    assert got.missing == tuple(p.field for p in second.points)
    assert [type(e) for e in got.errors] == [ModbusExceptionError]


async def test_to_reading_and_metadata() -> None:
    async with (
        ModbusMeterSimulator({4: SDM630}, provider=constant) as sim,
        ModbusLink(sim.url, OPTIONS) as link,
    ):
        before = datetime.now(UTC)
        got = await read_meter(link, model=SDM630, unit_id=4, ct=30, pt=10)
    reading = got.to_reading(meter_id=8, source="modbus-test")
    assert before <= got.ts <= datetime.now(UTC)
    assert got.multiplier == 300
    fields: dict[str, Any] = VALUES
    assert reading == Reading(meter_id=8, ts=got.ts, source="modbus-test", **fields)


async def test_read_meter_through_a_pool_needs_a_url() -> None:
    async with LinkPool(OPTIONS) as pool:
        with pytest.raises(ValueError, match="url"):
            await read_meter(pool, model=SDM630, unit_id=1)


async def test_failing_link_logs_error_once_then_debug() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = LinkOptions(timeout=1.0, retries=0, reconnect_min=0.01, reconnect_max=0.01)
    block = plan_blocks(SDM630)[0]
    with structlog.testing.capture_logs() as logs:
        async with ModbusLink(f"tcp://127.0.0.1:{port}", options) as link:
            for _ in range(3):
                with pytest.raises(CollectorError):
                    await link.read(block, unit_id=1)
                await asyncio.sleep(0.02)
    down = [e["log_level"] for e in logs if e["event"] == "modbus link down"]
    assert down == ["error", "debug", "debug"]

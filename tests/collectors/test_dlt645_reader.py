"""`read_meter` / `read_address` over a real `TcpBus` against the gateway simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from collectors.dlt645 import BcdError, ChecksumError, MeterErrorReply, MeterErrorWord
from collectors.dlt645.reader import DEFAULT_SET, Query, read_address, read_meter
from collectors.dlt645.transport import TcpBus
from collectors.errors import RequestTimeoutError
from meterhub.reading import LOCAL_TZ, Quality, Reading
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, MeterFaults, ReadingProvider, ValueProvider

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
M1, M2 = "000000000001", "000000000002"
#: LinearProvider at NOW (10 h at 12.5 kW) for meter 000000000001.
EXPECTED_M1 = {
    "energy": 1126.0,
    "energy_sharp": 112.6,
    "energy_peak": 337.8,
    "energy_flat": 394.1,
    "energy_valley": 281.5,
    "voltage_a": 230.0,
    "voltage_b": 231.0,
    "voltage_c": 232.0,
    "current_a": 19.069,
    "current_b": 18.987,
    "current_c": 18.905,
    "power": 12.5,
    "power_factor": 0.95,
}


@asynccontextmanager
async def _bus(
    *meters: Dlt645Meter,
    provider: ValueProvider | None = None,
    clock: dt.datetime = NOW,
) -> AsyncIterator[tuple[TcpBus, SimulatedBus]]:
    sim = SimulatedBus(meters, provider=provider, clock=lambda: clock)
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=0) as bus:
        yield bus, sim


async def test_reads_every_default_value_exactly() -> None:
    async with _bus(Dlt645Meter(M1)) as (bus, sim):
        values = await read_meter(bus, M1, timeout=2.0)
    assert values.address == M1
    assert dict(values.fields) == EXPECTED_M1
    assert values.clock == NOW
    assert values.missing == {}
    assert [exchange.di for exchange in sim.exchanges] == [
        0x0001FF00,
        0x0201FF00,
        0x0202FF00,
        0x02030000,
        0x02060000,
        0x04000101,
        0x04000102,
    ]


async def test_to_reading_carries_the_fields() -> None:
    async with _bus(Dlt645Meter(M1)) as (bus, _):
        values = await read_meter(bus, M1, timeout=2.0)
    assert values.clock is not None
    reading = values.to_reading(17, ts=values.clock, quality=Quality.CLOCK_DRIFT)
    assert reading == Reading(
        meter_id=17, ts=NOW, quality=Quality.CLOCK_DRIFT, source="dlt645", **EXPECTED_M1
    )


async def test_thirty_two_meters_on_one_bus_read_concurrently() -> None:
    meters = [Dlt645Meter(f"{n:012d}") for n in range(1, 33)]
    async with _bus(*meters) as (bus, sim):
        results = await asyncio.gather(
            *(read_meter(bus, meter.address, timeout=5.0) for meter in meters)
        )
    assert [values.fields["energy"] for values in results] == [1125.0 + n for n in range(1, 33)]
    assert all(values.fields["power"] == 12.5 for values in results)
    assert all(values.clock == NOW for values in results)
    assert len(sim.exchanges) == 32 * 7
    assert sim.overlaps == 0


async def test_no_data_block_falls_back_to_single_identifiers() -> None:
    faults = MeterFaults(no_data=frozenset({0x0001FF00, 0x0201FF00, 0x00010400, 0x02060000}))
    async with _bus(Dlt645Meter(M1, faults=faults)) as (bus, _):
        values = await read_meter(bus, M1, timeout=2.0)
    expected = {k: v for k, v in EXPECTED_M1.items() if k not in ("energy_valley", "power_factor")}
    assert dict(values.fields) == expected
    assert sorted(values.missing) == [0x00010400, 0x0001FF00, 0x0201FF00, 0x02060000]
    for error in values.missing.values():
        assert isinstance(error, MeterErrorReply)
        assert error.error_word == MeterErrorWord.NO_DATA


async def test_multi_frame_replies_are_fetched_with_follow_ups() -> None:
    async with _bus(Dlt645Meter(M1, max_frame_data=8)) as (bus, sim):
        values = await read_meter(bus, M1, timeout=2.0)
    assert dict(values.fields) == EXPECTED_M1
    functions = [(exchange.function, exchange.di) for exchange in sim.exchanges[:4]]
    assert functions == [
        (0x11, 0x0001FF00),
        (0x12, 0x0001FF00),
        (0x12, 0x0001FF00),
        (0x11, 0x0201FF00),
    ]


async def test_silent_meter_fails_after_retries() -> None:
    async with _bus(Dlt645Meter(M1, faults=MeterFaults(no_answer=True))) as (bus, sim):
        with pytest.raises(RequestTimeoutError):
            await read_meter(bus, M1, timeout=0.1, retries=2, backoff=0.01)
    assert len(sim.exchanges) == 3


async def test_corrupt_meter_fails_with_checksum_error_after_retries() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(corrupt_checksum=True))
    async with _bus(meter) as (bus, sim):
        with pytest.raises(ChecksumError):
            await read_meter(bus, M1, timeout=5.0, retries=3, backoff=0.01)
    assert len(sim.exchanges) == 4


async def test_checksum_error_then_recovery_succeeds_on_retry() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(corrupt_checksum=True))
    calls: list[int] = []

    def provider(address: str, di: int, now: dt.datetime) -> float | None:
        calls.append(di)
        meter.faults.corrupt_checksum = len(calls) == 1  # only the first reply is corrupt
        return 42.0 if di == 0x00010000 else None

    async with _bus(meter, provider=provider) as (bus, _):
        values = await read_meter(bus, M1, identifiers=[0x00010000], timeout=5.0, backoff=0.01)
    assert dict(values.fields) == {"energy": 42.0}
    assert calls == [0x00010000, 0x00010000]


async def test_garbage_values_are_missing_not_fatal() -> None:
    async with _bus(Dlt645Meter(M1, faults=MeterFaults(garbage_values=True))) as (bus, sim):
        values = await read_meter(bus, M1, timeout=2.0)
    assert values.fields == {}
    assert values.clock is None
    assert sorted(values.missing) == sorted(query.di for query in DEFAULT_SET)
    assert all(isinstance(error, BcdError) for error in values.missing.values())
    assert len(sim.exchanges) == 7


async def test_late_answer_within_the_timeout_is_accepted() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(late_answer=0.1))
    async with _bus(meter) as (bus, _):
        values = await read_meter(bus, M1, identifiers=[0x02030000], timeout=5.0, retries=0)
    assert dict(values.fields) == {"power": 12.5}


async def test_answer_later_than_the_timeout_is_a_timeout() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(late_answer=1.0))
    async with _bus(meter) as (bus, _):
        with pytest.raises(RequestTimeoutError):
            await read_meter(bus, M1, identifiers=[0x02030000], timeout=0.1, retries=0)


async def test_meter_clock_drift_is_reported() -> None:
    async with _bus(Dlt645Meter(M1, clock_offset=-95.0)) as (bus, _):
        values = await read_meter(bus, M1, identifiers=[Query(0x04000101), 0x04000102])
    assert values.clock == NOW - dt.timedelta(seconds=95)
    assert values.fields == {}


async def test_clock_read_just_after_midnight_rereads_the_date() -> None:
    """Date before midnight, time after it: the date is read again."""
    moments = iter(
        [
            dt.datetime(2026, 1, 1, 23, 59, 59, tzinfo=LOCAL_TZ),  # date read
            dt.datetime(2026, 1, 2, 0, 0, 0, tzinfo=LOCAL_TZ),  # time read
            dt.datetime(2026, 1, 2, 0, 0, 0, tzinfo=LOCAL_TZ),  # date re-read
        ]
    )
    sim = SimulatedBus([Dlt645Meter(M1)], clock=lambda: next(moments))
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=0) as bus:
        values = await read_meter(bus, M1, identifiers=[0x04000101, 0x04000102])
    assert values.clock == dt.datetime(2026, 1, 2, 0, 0, 0, tzinfo=LOCAL_TZ)
    assert [exchange.di for exchange in sim.exchanges] == [0x04000101, 0x04000102, 0x04000101]


async def test_dlt645_1997_meter() -> None:
    async with _bus(Dlt645Meter(M1)) as (bus, sim):
        values = await read_meter(bus, M1, version=1997, timeout=2.0)
    assert values.fields["energy"] == 1126.0
    assert values.fields["energy_valley"] == 281.5
    assert values.fields["voltage_b"] == 231.0  # 1997 voltages are whole volts
    assert values.fields["current_a"] == 19.07  # and currents XX.XX A
    assert values.clock == NOW
    assert [exchange.function for exchange in sim.exchanges] == [0x01] * 7


async def test_read_address_of_the_only_meter() -> None:
    async with _bus(Dlt645Meter("000102030425")) as (bus, _):
        assert await read_address(bus, timeout=2.0) == "000102030425"


async def test_read_address_with_two_meters_collides() -> None:
    async with _bus(Dlt645Meter(M1), Dlt645Meter(M2)) as (bus, sim):
        with pytest.raises(ChecksumError):
            await read_address(bus, timeout=2.0, retries=1, backoff=0.01)
    assert len(sim.exchanges) == 2


async def test_values_from_a_reading_provider() -> None:
    """The simulator core's `Reading`s feed the bus; None fields refuse, NaN is garbage."""
    stamped = NOW + dt.timedelta(seconds=42)  # the meter's own clock

    def reading_at(address: str, now: dt.datetime) -> Reading:
        return Reading(
            meter_id=1,
            ts=stamped,
            energy=1206.42,
            energy_sharp=100.0,
            energy_peak=200.0,
            energy_flat=300.0,
            energy_valley=606.42,
            power=-3.25,
            voltage_a=220.1,
            voltage_b=221.2,
            current_a=5.001,
            current_b=5.002,
            current_c=5.003,
            power_factor=float("nan"),
        )

    async with _bus(Dlt645Meter(M1), provider=ReadingProvider(reading_at)) as (bus, _):
        values = await read_meter(bus, M1, timeout=2.0)
    assert dict(values.fields) == {
        "energy": 1206.42,
        "energy_sharp": 100.0,
        "energy_peak": 200.0,
        "energy_flat": 300.0,
        "energy_valley": 606.42,
        "voltage_a": 220.1,
        "voltage_b": 221.2,
        "current_a": 5.001,
        "current_b": 5.002,
        "current_c": 5.003,
        "power": -3.25,
    }
    assert values.clock == stamped
    assert sorted(values.missing) == [0x02010300, 0x0201FF00, 0x02060000]
    assert isinstance(values.missing[0x02010300], MeterErrorReply)
    assert isinstance(values.missing[0x02060000], BcdError)

"""`DtuListener` and `DtuBus` over real TCP, with simulated and hand-driven DTUs."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest

from collectors.dlt645 import encode_read, encode_reply, encode_value, parse_read_reply
from collectors.dlt645.dtu import DtuFormat, DtuListener
from collectors.dlt645.pool import BusPool
from collectors.dlt645.reader import read_meter
from collectors.errors import TransportError
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_gateway import SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, LinearProvider
from simulators.dtu_client import SimulatedDtu

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
M1 = "000000000001"
ENERGY = 0x00010000


def _meters(start_energy: float = 1000.0) -> SimulatedBus:
    provider = LinearProvider(start_energy=start_energy)
    return SimulatedBus([Dlt645Meter(M1)], provider=provider, clock=lambda: NOW)


@pytest.fixture
async def listener() -> AsyncIterator[DtuListener]:
    async with DtuListener("127.0.0.1", 0, gap=0, idle_timeout=30.0) as dtu_listener:
        yield dtu_listener


def _dtu(
    listener: DtuListener,
    bus: SimulatedBus,
    *,
    heartbeat_interval: float | None = 30.0,
    redial: float | None = None,
) -> SimulatedDtu:
    return SimulatedDtu(
        "127.0.0.1",
        listener.port,
        dtu_id="YW0001",
        bus=bus,
        heartbeat_interval=heartbeat_interval,
        redial=redial,
    )


async def test_registered_dtu_is_polled_through_its_bus(listener: DtuListener) -> None:
    async with _dtu(listener, _meters()):
        bus = listener.bus("YW0001")
        await bus.wait_connected(timeout=10.0)
        assert listener.connected() == frozenset({"YW0001"})
        values = await read_meter(bus, M1, timeout=5.0)
    assert values.fields["energy"] == 1126.0
    assert values.clock == NOW


async def test_heartbeats_are_swallowed_between_replies(listener: DtuListener) -> None:
    sim = _meters()
    async with _dtu(listener, sim, heartbeat_interval=0.005) as dtu:
        bus = listener.bus("YW0001")
        await bus.wait_connected(timeout=10.0)
        results = [await read_meter(bus, M1, timeout=5.0) for _ in range(10)]
        await asyncio.sleep(0.1)
        assert bus.heartbeats >= 1
        assert dtu.heartbeats_sent >= bus.heartbeats
    assert {values.fields["energy"] for values in results} == {1126.0}
    assert len(sim.exchanges) == 70


async def test_reconnect_with_the_same_id_replaces_the_old_link(listener: DtuListener) -> None:
    bus = listener.bus("YW0001")
    async with _dtu(listener, _meters(1000.0)) as first:
        await bus.wait_connected(timeout=10.0)
        assert (await read_meter(bus, M1, identifiers=[ENERGY])).fields["energy"] == 1126.0
        async with _dtu(listener, _meters(5000.0)) as second:
            await first.wait_disconnected(timeout=10.0)
            await bus.wait_connected(timeout=10.0)
            values = await read_meter(bus, M1, identifiers=[ENERGY])
            assert values.fields["energy"] == 5126.0
            assert listener.connected() == frozenset({"YW0001"})
            assert (first.connections, second.connections) == (1, 1)


async def test_silent_link_is_closed_as_dead() -> None:
    async with (
        DtuListener("127.0.0.1", 0, gap=0, idle_timeout=0.3) as listener,
        _dtu(listener, _meters(), heartbeat_interval=None) as dtu,
    ):
        bus = listener.bus("YW0001")
        await bus.wait_connected(timeout=10.0)
        await dtu.wait_disconnected(timeout=10.0)
        assert not bus.connected
        assert listener.connected() == frozenset()
        with pytest.raises(TransportError, match="YW0001 is not connected"):
            await bus.transact(encode_read(M1, ENERGY), timeout=1.0)


async def test_heartbeats_keep_an_idle_link_alive() -> None:
    async with (
        DtuListener("127.0.0.1", 0, gap=0, idle_timeout=0.3) as listener,
        _dtu(listener, _meters(), heartbeat_interval=0.05),
    ):
        bus = listener.bus("YW0001")
        await bus.wait_connected(timeout=10.0)
        await asyncio.sleep(1.0)
        assert bus.connected
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=5.0)
    assert parse_read_reply(frame, expected_address=M1, expected_di=ENERGY).value == 1126.0


async def test_dtu_redials_after_its_link_is_dropped() -> None:
    async with (
        DtuListener("127.0.0.1", 0, gap=0, idle_timeout=0.3) as listener,
        _dtu(listener, _meters(), heartbeat_interval=None, redial=0.05) as dtu,
    ):
        bus = listener.bus("YW0001")
        await bus.wait_connected(timeout=10.0)
        await dtu.wait_disconnected(timeout=10.0)
        await bus.wait_connected(timeout=10.0)
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=5.0)
        assert frame.address == M1
        assert dtu.connections >= 2


async def _raw(
    listener: DtuListener, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(first)
    return reader, writer


async def test_hand_driven_dtu_with_coalesced_packets(listener: DtuListener) -> None:
    """Registration, heartbeats and a reply in the exact bytes a DTU sends."""
    reader, writer = await _raw(listener, b"REG:dtu-7.a\r\nHB\r\nHB")
    try:
        bus = listener.bus("dtu-7.a")
        await bus.wait_connected(timeout=10.0)
        pending = asyncio.create_task(bus.transact(encode_read(M1, ENERGY), timeout=10.0))
        request = await reader.readexactly(20)
        assert request == encode_read(M1, ENERGY)
        writer.write(b"HB\r\n")
        await writer.drain()
        writer.write(encode_reply(M1, ENERGY, encode_value(ENERGY, 1206.42)))
        frame = await pending
        assert parse_read_reply(frame, expected_address=M1, expected_di=ENERGY).value == 1206.42
        assert bus.heartbeats >= 1
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("dtu_format", "packet", "dtu_id"),
    [
        (
            DtuFormat(registration=re.compile(rb"(\d{15})\r\n")),
            b"861234567890123\r\n",
            "861234567890123",
        ),
        (
            DtuFormat(registration=re.compile(rb"\xaa\x55(.{4})", re.S), id_as_hex=True),
            b"\xaa\x55\x01\x02\x0a\xff",
            "01020AFF",
        ),
    ],
)
async def test_configurable_registration(dtu_format: DtuFormat, packet: bytes, dtu_id: str) -> None:
    async with DtuListener("127.0.0.1", 0, dtu_format=dtu_format) as listener:
        _, writer = await _raw(listener, packet)
        try:
            await listener.bus(dtu_id).wait_connected(timeout=10.0)
            assert listener.connected() == frozenset({dtu_id})
        finally:
            writer.close()
            await writer.wait_closed()


async def test_registration_split_across_packets(listener: DtuListener) -> None:
    _, writer = await _raw(listener, b"REG:YW")
    try:
        await writer.drain()
        await asyncio.sleep(0.05)
        assert listener.connected() == frozenset()
        writer.write(b"0001\r\n")
        await listener.bus("YW0001").wait_connected(timeout=10.0)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("first", [b"x" * 300, b"REG:bad/id\r\n", b""])
async def test_unregistered_connections_are_closed(first: bytes) -> None:
    async with DtuListener("127.0.0.1", 0, registration_timeout=0.2) as listener:
        reader, writer = await _raw(listener, first)
        try:
            assert await asyncio.wait_for(reader.read(), timeout=10.0) == b""
            assert listener.connected() == frozenset()
        finally:
            writer.close()
            await writer.wait_closed()


async def test_unknown_dtu_is_not_connected(listener: DtuListener) -> None:
    bus = listener.bus("nobody")
    with pytest.raises(TransportError, match="nobody is not connected"):
        await bus.transact(encode_read(M1, ENERGY), timeout=1.0)
    with pytest.raises(TimeoutError):
        await bus.wait_connected(timeout=0.05)


async def test_pool_hands_out_the_listener_bus(listener: DtuListener) -> None:
    async with BusPool(dtu_listener=listener, gap=0) as pool:
        assert pool.get("dtu://YW0001") is listener.bus("YW0001")
        assert pool.get("dtu://YW0001?gap_ms=0") is listener.bus("YW0001")

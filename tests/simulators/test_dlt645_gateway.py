"""The simulated RS-485 bus and TCP gateway, checked byte for byte over raw sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import operator
from collections.abc import AsyncIterator

import pytest

from collectors.dlt645 import (
    Control,
    Frame,
    FrameReader,
    MeterDate,
    MeterErrorWord,
    encode_address_reply,
    encode_broadcast_time,
    encode_error_reply,
    encode_read,
    encode_read_address,
    encode_read_followup,
    encode_reply,
    encode_value,
)
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, LinearProvider, MeterFaults

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
M1, M2 = "000000000001", "000000000002"
ENERGY, BLOCK = 0x00010000, 0x0001FF00
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _reply(address: str, di: int, value: float) -> bytes:
    return encode_reply(address, di, encode_value(di, value))


async def _no_bytes(reader: asyncio.StreamReader, wait: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), timeout=wait)


@pytest.fixture
async def line() -> AsyncIterator[tuple[SimulatedBus, Dlt645GatewaySimulator, Streams]]:
    sim = SimulatedBus([Dlt645Meter(M1), Dlt645Meter(M2)], clock=lambda: NOW)
    async with Dlt645GatewaySimulator(sim) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            yield sim, gateway, (reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_only_the_addressed_meter_answers(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    sim, _, (reader, writer) = line
    writer.write(encode_read(M2, ENERGY))
    expected = _reply(M2, ENERGY, 1127.0)
    assert await asyncio.wait_for(reader.readexactly(len(expected)), 10.0) == expected
    writer.write(encode_read("000000000009", ENERGY))
    await _no_bytes(reader)
    assert [(e.address, e.di, e.answered_at is None) for e in sim.exchanges] == [
        (M2, ENERGY, False),
        ("000000000009", ENERGY, True),
    ]


async def test_wildcard_read_address_collides_with_two_meters(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    _, _, (reader, writer) = line
    writer.write(encode_read_address())
    replies = [encode_address_reply(M1), encode_address_reply(M2)]
    garbled = bytes(functools.reduce(operator.or_, pair) for pair in zip(*replies, strict=True))
    assert await asyncio.wait_for(reader.readexactly(len(garbled)), 10.0) == garbled
    assert garbled != replies[0]


async def test_wildcard_read_address_with_one_meter() -> None:
    sim = SimulatedBus([Dlt645Meter("000102030425")])
    async with Dlt645GatewaySimulator(sim) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(encode_read_address())
        expected = encode_address_reply("000102030425")
        assert await asyncio.wait_for(reader.readexactly(len(expected)), 10.0) == expected
        writer.close()
        await writer.wait_closed()


async def test_faults_change_the_reply_bytes(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    sim, _, (reader, writer) = line
    good = _reply(M1, ENERGY, 1126.0)
    faults = sim.meters[M1].faults
    faults.corrupt_checksum = True
    writer.write(encode_read(M1, ENERGY))
    corrupt = good[:-2] + bytes((good[-2] ^ 0x5A, 0x16))
    assert await asyncio.wait_for(reader.readexactly(len(good)), 10.0) == corrupt
    faults.corrupt_checksum, faults.garbage_values = False, True
    writer.write(encode_read(M1, ENERGY))
    garbage = encode_reply(M1, ENERGY, b"\xff" * 4)
    assert await asyncio.wait_for(reader.readexactly(len(garbage)), 10.0) == garbage
    faults.garbage_values, faults.no_data = False, frozenset({ENERGY})
    writer.write(encode_read(M1, ENERGY))
    refusal = encode_error_reply(M1, MeterErrorWord.NO_DATA)
    assert await asyncio.wait_for(reader.readexactly(len(refusal)), 10.0) == refusal
    faults.no_data, faults.no_answer = frozenset(), True
    writer.write(encode_read(M1, ENERGY))
    await _no_bytes(reader)


async def test_unknown_identifier_is_refused(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    _, _, (reader, writer) = line
    writer.write(encode_read(M1, 0x12345678))
    refusal = encode_error_reply(M1, MeterErrorWord.NO_DATA)
    assert await asyncio.wait_for(reader.readexactly(len(refusal)), 10.0) == refusal


async def test_long_values_come_in_follow_up_frames() -> None:
    sim = SimulatedBus([Dlt645Meter(M1, max_frame_data=8)], clock=lambda: NOW)
    async with Dlt645GatewaySimulator(sim) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        value = encode_value(BLOCK, (1126.0, 112.6, 337.8, 394.1, 281.5))
        frames = FrameReader()
        controls: list[int] = []
        parts: list[bytes] = []
        for seq, request in enumerate(
            [encode_read(M1, BLOCK)] + [encode_read_followup(M1, BLOCK, seq=n) for n in (1, 2)]
        ):
            writer.write(request)
            items: list[object] = []
            while not items:
                items = list(frames.feed(await asyncio.wait_for(reader.read(256), 10.0)))
            frame = items[0]
            assert isinstance(frame, Frame)
            controls.append(frame.control.byte)
            parts.append(frame.data[4:] if seq == 0 else frame.data[4:-1])
        writer.close()
        await writer.wait_closed()
    assert controls == [0xB1, 0xB2, 0x92]
    assert b"".join(parts) == value


async def test_dlt645_1997_read(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    _, _, (reader, writer) = line
    writer.write(encode_read(M1, 0xB611, version=1997))
    expected = encode_reply(M1, 0xB611, encode_value(0xB611, 230.0, version=1997), version=1997)
    assert await asyncio.wait_for(reader.readexactly(len(expected)), 10.0) == expected


async def test_broadcast_is_not_answered(
    line: tuple[SimulatedBus, Dlt645GatewaySimulator, Streams],
) -> None:
    sim, _, (reader, writer) = line
    writer.write(encode_broadcast_time(dt.datetime(2026, 1, 1, 10, 0)))
    await _no_bytes(reader)
    assert [(e.address, e.function) for e in sim.exchanges] == [("999999999999", 0x08)]


async def test_serial_timing_and_half_duplex_collisions() -> None:
    sim = SimulatedBus([Dlt645Meter(M1), Dlt645Meter(M2)], clock=lambda: NOW, baud=1200)
    async with Dlt645GatewaySimulator(sim) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(encode_read(M1, ENERGY))
        for _ in range(2000):  # wait (at most ~2 s) until M1's reply is on the wire
            if sim.line.locked():
                break
            await asyncio.sleep(0.001)
        assert sim.line.locked()
        writer.write(encode_read(M2, ENERGY))  # talks over M1's reply: garbled
        expected = _reply(M1, ENERGY, 1126.0)
        assert await asyncio.wait_for(reader.readexactly(len(expected)), 10.0) == expected
        assert loop.time() - started >= (20 + 24) * 11 / 1200 - 0.01
        await _no_bytes(reader, 0.5)
        writer.close()
        await writer.wait_closed()
    assert sim.collisions == 1
    assert [exchange.address for exchange in sim.exchanges] == [M1]


async def test_offline_gateway_drops_connections() -> None:
    sim = SimulatedBus([Dlt645Meter(M1)], clock=lambda: NOW)
    async with Dlt645GatewaySimulator(sim) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        gateway.go_offline(0.2)
        assert await asyncio.wait_for(reader.read(), 10.0) == b""
        writer.close()
        await writer.wait_closed()
        await gateway.wait_online(timeout=10.0)
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(encode_read(M1, ENERGY))
        expected = _reply(M1, ENERGY, 1126.0)
        assert await asyncio.wait_for(reader.readexactly(len(expected)), 10.0) == expected
        writer.close()
        await writer.wait_closed()
    assert gateway.connections == 2


def test_linear_provider_is_consistent() -> None:
    provider = LinearProvider(power=10.0)
    at = provider.epoch + dt.timedelta(hours=3)
    assert provider(M2, ENERGY, at) == 1032.0
    assert provider(M2, BLOCK, at) == (1032.0, 103.2, 309.6, 361.2, 258.0)
    assert provider(M2, 0x0201FF00, at) == (230.0, 231.0, 232.0)
    assert provider(M2, 0x02020200, at) == 15.189  # 10 kW / 3 / (231 V x 0.95)
    assert provider(M2, 0x04000101, at) == MeterDate(dt.date(2026, 1, 1), 4)
    assert provider(M2, 0x04000102, at) == dt.time(3, 0)
    assert provider(M2, 0x99999999, at) is None
    later = provider(M2, ENERGY, at + dt.timedelta(minutes=30))
    assert later == 1037.0


def test_meter_without_a_value_refuses() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults())
    request = Frame(M1, Control(0x11), (0x02030000).to_bytes(4, "little"))
    reply = meter.respond(request, NOW, lambda address, di, now: None)
    assert reply == encode_error_reply(M1, MeterErrorWord.NO_DATA)

"""The simulated DTU against a hand-written listener: exact registration and heartbeat bytes."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest

from collectors.dlt645 import encode_read, encode_reply, encode_value
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_gateway import SimulatedBus
from simulators.dlt645_meter import Dlt645Meter
from simulators.dtu_client import SimulatedDtu

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
M1, ENERGY = "000000000001", 0x00010000
Accepted = asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, Accepted]]:
    """A listening socket that queues each accepted connection."""
    accepted: Accepted = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await accepted.put((reader, writer))

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield listening.sockets[0].getsockname()[1], accepted
    listening.close()
    for writer in writers:
        writer.close()
    await listening.wait_closed()


def _meters() -> SimulatedBus:
    return SimulatedBus([Dlt645Meter(M1)], clock=lambda: NOW)


async def test_registers_beats_and_answers(server: tuple[int, Accepted]) -> None:
    port, accepted = server
    async with SimulatedDtu(
        "127.0.0.1", port, dtu_id="YW0001", bus=_meters(), heartbeat_interval=0.01
    ) as dtu:
        reader, writer = await asyncio.wait_for(accepted.get(), 10.0)
        assert await asyncio.wait_for(reader.readexactly(12), 10.0) == b"REG:YW0001\r\n"
        assert await asyncio.wait_for(reader.readexactly(8), 10.0) == b"HB\r\nHB\r\n"
        dtu.heartbeat_interval = None  # stops after at most one more
        writer.write(encode_read(M1, ENERGY))
        expected = encode_reply(M1, ENERGY, encode_value(ENERGY, 1126.0))
        data = b""
        while expected not in data:
            data += await asyncio.wait_for(reader.read(256), 10.0)
        assert data.replace(b"HB\r\n", b"") == expected
        assert dtu.connections == 1
        assert dtu.heartbeats_sent >= 2


async def test_custom_packets(server: tuple[int, Accepted]) -> None:
    port, accepted = server
    dtu = SimulatedDtu(
        "127.0.0.1",
        port,
        dtu_id="X",
        bus=_meters(),
        registration=b"\xaa\x55\x01\x02",
        heartbeat=b"\x00",
        heartbeat_interval=0.01,
    )
    async with dtu:
        reader, _ = await asyncio.wait_for(accepted.get(), 10.0)
        assert await asyncio.wait_for(reader.readexactly(6), 10.0) == b"\xaa\x55\x01\x02\x00\x00"


async def test_redials_after_the_server_hangs_up(server: tuple[int, Accepted]) -> None:
    port, accepted = server
    async with SimulatedDtu(
        "127.0.0.1", port, dtu_id="YW0001", bus=_meters(), heartbeat_interval=None, redial=0.01
    ) as dtu:
        reader, writer = await asyncio.wait_for(accepted.get(), 10.0)
        assert await asyncio.wait_for(reader.readexactly(12), 10.0) == b"REG:YW0001\r\n"
        writer.close()
        await dtu.wait_disconnected(timeout=10.0)
        reader, _ = await asyncio.wait_for(accepted.get(), 10.0)
        assert await asyncio.wait_for(reader.readexactly(12), 10.0) == b"REG:YW0001\r\n"
        assert dtu.connections == 2


async def test_unreachable_listener_without_redial_just_stops() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with SimulatedDtu("127.0.0.1", port, dtu_id="YW0001", bus=_meters()) as dtu:
        await dtu.wait_stopped(timeout=10.0)
    assert dtu.connections == 0

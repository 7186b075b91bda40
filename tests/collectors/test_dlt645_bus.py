"""`TcpBus` over real TCP against the gateway simulator and scripted servers."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import REGISTRY

from collectors.dlt645 import (
    ChecksumError,
    FrameFormatError,
    MeterErrorWord,
    encode_broadcast_time,
    encode_error_reply,
    encode_read,
    encode_reply,
    encode_value,
    parse_read_reply,
)
from collectors.dlt645 import bus as bus_module
from collectors.dlt645.transport import TcpBus
from collectors.errors import RequestTimeoutError, TransportError
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, MeterFaults, ValueProvider

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
ENERGY = 0x00010000
M1, M2 = "000000000001", "000000000002"


def _sim(*meters: Dlt645Meter, provider: ValueProvider | None = None) -> SimulatedBus:
    return SimulatedBus(meters, provider=provider, clock=lambda: NOW)


@pytest.fixture
async def gateway() -> AsyncIterator[Dlt645GatewaySimulator]:
    async with Dlt645GatewaySimulator(_sim(Dlt645Meter(M1), Dlt645Meter(M2))) as gw:
        yield gw


async def test_transact_returns_the_reply_frame(gateway: Dlt645GatewaySimulator) -> None:
    async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        reply = parse_read_reply(frame, expected_address=M1, expected_di=ENERGY)
        assert reply.value == 1126.0
        frame = await bus.transact(encode_read(M2, ENERGY), timeout=2.0)
        assert frame.address == M2
    assert gateway.connections == 1


async def test_silent_meter_times_out() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(no_answer=True))
    async with Dlt645GatewaySimulator(_sim(meter)) as gw, TcpBus("127.0.0.1", gw.port) as bus:
        started = asyncio.get_running_loop().time()
        with pytest.raises(RequestTimeoutError):
            await bus.transact(encode_read(M1, ENERGY), timeout=0.2)
        assert asyncio.get_running_loop().time() - started >= 0.2


async def test_corrupt_reply_fails_fast_with_checksum_error() -> None:
    meter = Dlt645Meter(M1, faults=MeterFaults(corrupt_checksum=True))
    async with Dlt645GatewaySimulator(_sim(meter)) as gw, TcpBus("127.0.0.1", gw.port) as bus:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ChecksumError):
            await bus.transact(encode_read(M1, ENERGY), timeout=30.0)
        assert asyncio.get_running_loop().time() - started < 20.0


async def test_concurrent_requests_never_overlap_on_one_bus() -> None:
    meters = [Dlt645Meter(f"{n:012d}", reply_delay=0.01) for n in range(1, 5)]
    sim = _sim(*meters)
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=0) as bus:
        requests = [encode_read(meter.address, ENERGY) for meter in meters * 5]
        frames = await asyncio.gather(*(bus.transact(r, timeout=5.0) for r in requests))
    assert [frame.address for frame in frames] == [meter.address for meter in meters * 5]
    assert len(sim.exchanges) == 20
    assert sim.overlaps == 0
    assert sim.collisions == 0


async def test_two_bus_objects_on_one_gateway_do_overlap() -> None:
    """The control case: without the shared lock the simulator sees overlapping requests."""
    sim = _sim(Dlt645Meter(M1, reply_delay=0.05), Dlt645Meter(M2, reply_delay=0.05))
    async with (
        Dlt645GatewaySimulator(sim) as gw,
        TcpBus("127.0.0.1", gw.port, gap=0) as first,
        TcpBus("127.0.0.1", gw.port, gap=0) as second,
    ):

        async def poll(bus: TcpBus, address: str) -> None:
            for _ in range(5):
                await bus.transact(encode_read(address, ENERGY), timeout=5.0)

        await asyncio.gather(poll(first, M1), poll(second, M2))
    assert sim.overlaps > 0


@pytest.mark.parametrize("gap", [0.05, 0.0])
async def test_inter_frame_gap_is_respected(gap: float) -> None:
    sim = _sim(Dlt645Meter(M1), Dlt645Meter(M2))
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=gap) as bus:
        requests = [encode_read(address, ENERGY) for address in (M1, M2) * 4]
        await asyncio.gather(*(bus.transact(request, timeout=5.0) for request in requests))
    gaps = sim.gaps()
    assert len(gaps) == 7
    assert min(gaps) >= gap - 0.001


async def test_stale_late_reply_is_drained_before_the_next_request() -> None:
    calls: list[int] = []

    def counting(address: str, di: int, now: dt.datetime) -> float:
        calls.append(di)
        return float(len(calls))

    meter = Dlt645Meter(M1, faults=MeterFaults(late_answer=0.2))
    sim = _sim(meter, provider=counting)
    stale_before = REGISTRY.get_sample_value("meterhub_dlt645_stale_bytes_total") or 0.0
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=1.0) as bus:
        with pytest.raises(RequestTimeoutError):
            await bus.transact(encode_read(M1, ENERGY), timeout=0.05)
        meter.faults.late_answer = 0.0
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=5.0)
    assert parse_read_reply(frame, expected_address=M1, expected_di=ENERGY).value == 2.0
    stale_after = REGISTRY.get_sample_value("meterhub_dlt645_stale_bytes_total") or 0.0
    assert stale_after - stale_before == len(encode_reply(M1, ENERGY, encode_value(ENERGY, 1.0)))


async def test_late_reply_from_another_meter_is_skipped() -> None:
    late = Dlt645Meter(M1, faults=MeterFaults(late_answer=0.3))
    slow = Dlt645Meter(M2, reply_delay=0.6)
    sim = _sim(late, slow)
    async with Dlt645GatewaySimulator(sim) as gw, TcpBus("127.0.0.1", gw.port, gap=0) as bus:
        with pytest.raises(RequestTimeoutError):
            await bus.transact(encode_read(M1, ENERGY), timeout=0.1)
        frame = await bus.transact(encode_read(M2, ENERGY), timeout=5.0)
    assert frame.address == M2
    assert parse_read_reply(frame, expected_address=M2, expected_di=ENERGY).value == 1127.0
    assert sim.exchanges[0].answered_at is not None


async def test_reconnects_after_the_gateway_drops_the_connection(
    gateway: Dlt645GatewaySimulator,
) -> None:
    async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
        await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        await gateway.drop_connections()
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        assert frame.address == M1
    assert gateway.connections == 2


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **_: self.events.append((level, event))


async def test_offline_gateway_raises_transport_error_logged_once(
    gateway: Dlt645GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(bus_module, "_log", recorder)
    async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
        await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        gateway.go_offline()
        for _ in range(3):
            with pytest.raises(TransportError):
                await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        gateway.go_online()
        await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
    failures = [level for level, event in recorder.events if event == "dlt645.bus_failed"]
    assert failures == ["error", "debug", "debug"]
    assert ("info", "dlt645.bus_recovered") in recorder.events


async def test_gateway_offline_for_a_period_comes_back(gateway: Dlt645GatewaySimulator) -> None:
    async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
        gateway.go_offline(0.3)
        with pytest.raises(TransportError):
            await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        await gateway.wait_online(timeout=10.0)
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
        assert frame.address == M1


async def test_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TcpBus("127.0.0.1", port, connect_timeout=5.0) as bus:
        with pytest.raises(TransportError, match="cannot open tcp"):
            await bus.transact(encode_read(M1, ENERGY), timeout=1.0)
        assert not bus.connected


Script = Callable[[bytes], Awaitable[bytes]]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    """A TCP server that answers each chunk it receives with ``script(chunk)``."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(script: Script) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            while data := await reader.read(1024):
                writer.write(await script(data))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
    for writer in writers:
        writer.close()
    await asyncio.sleep(0.01)


async def test_echo_other_meters_and_noise_are_skipped(
    scripted: Callable[[Script], Awaitable[int]],
) -> None:
    """An adapter that echoes the request, a neighbour's reply and noise precede the reply."""
    other = encode_reply(M2, ENERGY, encode_value(ENERGY, 5.0))
    other_di = encode_reply(M1, 0x00010100, encode_value(0x00010100, 6.0))
    mine = encode_reply(M1, ENERGY, encode_value(ENERGY, 7.0))

    async def script(request: bytes) -> bytes:
        return request + other + b"\x00\x68\x99noise" + other_di + mine

    port = await scripted(script)
    async with TcpBus("127.0.0.1", port, gap=0) as bus:
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
    assert parse_read_reply(frame, expected_address=M1, expected_di=ENERGY).value == 7.0


async def test_error_reply_is_returned_as_the_answer(
    scripted: Callable[[Script], Awaitable[int]],
) -> None:
    async def script(request: bytes) -> bytes:
        return encode_error_reply(M1, MeterErrorWord.NO_DATA)

    port = await scripted(script)
    async with TcpBus("127.0.0.1", port, gap=0) as bus:
        frame = await bus.transact(encode_read(M1, ENERGY), timeout=2.0)
    assert frame.control.is_abnormal
    assert frame.data == bytes([MeterErrorWord.NO_DATA])


async def test_request_must_be_one_frame(gateway: Dlt645GatewaySimulator) -> None:
    async with TcpBus("127.0.0.1", gateway.port) as bus:
        with pytest.raises(FrameFormatError, match="not exactly one frame"):
            await bus.transact(b"\x68\x00", timeout=1.0)


def test_negative_gap_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        TcpBus("127.0.0.1", 1, gap=-0.1)


async def test_send_writes_a_broadcast_and_keeps_the_gap(gateway: Dlt645GatewaySimulator) -> None:
    async with TcpBus("127.0.0.1", gateway.port, gap=0.05) as bus:
        await bus.send(encode_broadcast_time(dt.datetime(2026, 1, 1, 10, 0)))
        await bus.transact(encode_read(M1, ENERGY), timeout=5.0)
    exchanges = gateway.bus.exchanges
    assert [(e.address, e.function) for e in exchanges] == [("999999999999", 0x08), (M1, 0x11)]
    assert exchanges[1].received_at - exchanges[0].received_at >= 0.05 - 0.001


async def test_tcp_link_uses_keepalive(gateway: Dlt645GatewaySimulator) -> None:
    async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
        await bus.transact(encode_read(M1, ENERGY), timeout=5.0)
        assert bus._link is not None and bus._link._transport is not None
        sock = bus._link._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1

"""`SerialBus` through pyserial-asyncio on a pseudo-terminal, the simulated bus on its
master side."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator

import pytest

from collectors.dlt645.pool import open_bus
from collectors.dlt645.reader import read_address, read_meter
from collectors.dlt645.transport import SerialBus
from collectors.errors import TransportError
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_gateway import SimulatedBus
from simulators.dlt645_meter import Dlt645Meter

NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=LOCAL_TZ)
M1 = "000102030425"


@pytest.fixture
async def pty_meters() -> AsyncIterator[tuple[str, SimulatedBus]]:
    """A pty whose master end is served by a simulated bus; yields the slave's path."""
    try:
        master, slave = os.openpty()
    except OSError as exc:  # containers without /dev/pts
        pytest.skip(f"no pseudo-terminal available: {exc}")
    sim = SimulatedBus([Dlt645Meter(M1)], clock=lambda: NOW)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_pipe, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master, "rb", buffering=0)
    )
    write_pipe, write_protocol = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(os.dup(master), "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_pipe, write_protocol, reader, loop)
    serving = asyncio.create_task(sim.serve(reader, writer))
    try:
        yield os.ttyname(slave), sim
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        read_pipe.close()
        write_pipe.close()
        await asyncio.sleep(0)
        os.close(slave)


async def test_read_meter_over_a_serial_port(pty_meters: tuple[str, SimulatedBus]) -> None:
    device, sim = pty_meters
    # Linux ptys refuse parity bits (EINVAL), so the pty runs 8N1.
    async with SerialBus(device, baudrate=9600, parity="N", gap=0) as bus:
        assert await read_address(bus, timeout=5.0) == M1
        values = await read_meter(bus, M1, timeout=5.0)
        assert bus.connected
    assert values.fields["energy"] == 1550.0  # 1000 + 425 (address % 1000) + 10 h x 12.5 kW
    assert values.fields["voltage_c"] == 232.0
    assert values.clock == NOW
    assert len(sim.exchanges) == 8


async def test_serial_url_opens_a_serial_bus(pty_meters: tuple[str, SimulatedBus]) -> None:
    device, _ = pty_meters
    bus = open_bus(f"serial://{device}?baud=19200&parity=N&gap_ms=0")
    assert isinstance(bus, SerialBus)
    assert (bus.device, bus.baudrate, bus.parity, bus.gap) == (device, 19200, "N", 0.0)
    async with bus:
        values = await read_meter(bus, M1, identifiers=[0x02030000], timeout=5.0)
    assert dict(values.fields) == {"power": 12.5}


async def test_missing_serial_device_is_a_transport_error() -> None:
    async with SerialBus("/dev/meterhub-no-such-port") as bus:
        with pytest.raises(TransportError, match="cannot open serial:///dev/meterhub-no-such"):
            await read_meter(bus, M1, timeout=1.0)

"""Bus URLs from the registry and `BusPool` (one bus object per bus)."""

from __future__ import annotations

import pytest

from collectors.dlt645.pool import (
    BusPool,
    BusUrlError,
    DtuTarget,
    SerialTarget,
    TcpTarget,
    open_bus,
    parse_bus_url,
)
from collectors.dlt645.transport import SerialBus, TcpBus
from collectors.errors import CollectorError


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("tcp://127.0.0.1:4001", TcpTarget("127.0.0.1", 4001)),
        ("tcp://localhost:502/?gap_ms=80", TcpTarget("localhost", 502, gap=0.08)),
        ("dtu://YW0001", DtuTarget("YW0001")),
        ("dtu://861234567890123?gap_ms=0", DtuTarget("861234567890123", gap=0.0)),
        ("serial:///dev/ttyUSB0", SerialTarget("/dev/ttyUSB0")),
        (
            "serial:///dev/ttyS1?baud=9600&parity=n&bytesize=7&stopbits=2&gap_ms=20",
            SerialTarget("/dev/ttyS1", 9600, "N", 7, 2, gap=0.02),
        ),
        ("serial://COM3?baud=1200", SerialTarget("COM3", 1200)),
    ],
)
def test_parse_bus_url(url: str, target: object) -> None:
    assert parse_bus_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "udp://127.0.0.1:4001",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:notaport",
        "tcp://127.0.0.1:4001/path",
        "tcp://127.0.0.1:4001?baud=2400",
        "tcp://127.0.0.1:4001?gap_ms=-5",
        "tcp://127.0.0.1:4001?gap_ms=1&gap_ms=2",
        "dtu://",
        "serial://",
        "serial:///dev/ttyUSB0?parity=X",
        "serial:///dev/ttyUSB0?baud=fast",
        "serial:///dev/ttyUSB0?baud=0",
        "serial:///dev/ttyUSB0?bytesize=9",
    ],
)
def test_bad_bus_urls_are_refused(url: str) -> None:
    with pytest.raises(BusUrlError) as caught:
        parse_bus_url(url)
    assert isinstance(caught.value, CollectorError)
    assert caught.value.code == "bus_url"


def test_open_bus_builds_the_transport() -> None:
    tcp = open_bus("tcp://127.0.0.1:4001?gap_ms=10", connect_timeout=2.0)
    assert isinstance(tcp, TcpBus)
    assert (tcp.host, tcp.port, tcp.gap, tcp.connect_timeout) == ("127.0.0.1", 4001, 0.01, 2.0)
    serial = open_bus("serial:///dev/ttyUSB0", gap=0.2)
    assert isinstance(serial, SerialBus)
    assert (serial.baudrate, serial.parity, serial.bytesize, serial.stopbits) == (2400, "E", 8, 1)
    assert serial.gap == 0.2
    with pytest.raises(BusUrlError, match="needs a DtuListener"):
        open_bus("dtu://YW0001")


async def test_pool_keeps_one_bus_per_bus() -> None:
    async with BusPool(gap=0.05) as pool:
        first = pool.get("tcp://127.0.0.1:4001")
        assert pool.get("tcp://127.0.0.1:4001/") is first
        assert pool.get("tcp://127.0.0.1:4001?gap_ms=50") is first
        assert pool.get("tcp://127.0.0.1:4002") is not first
        serial = pool.get("serial:///dev/ttyUSB0")
        assert pool.get("serial:///dev/ttyUSB0?baud=2400&parity=E") is serial
        with pytest.raises(BusUrlError, match="conflicts"):
            pool.get("tcp://127.0.0.1:4001?gap_ms=10")
        with pytest.raises(BusUrlError, match="conflicts"):
            pool.get("serial:///dev/ttyUSB0?baud=9600")

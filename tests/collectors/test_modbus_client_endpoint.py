"""Link URLs: `parse_endpoint` and the canonical `Endpoint.url` (no I/O)."""

from __future__ import annotations

import pytest

from collectors.errors import CollectorError
from collectors.modbus.endpoint import Endpoint, EndpointError, parse_endpoint
from meterhub.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "endpoint", "canonical"),
    [
        ("tcp://127.0.0.1:1502", Endpoint("tcp", "127.0.0.1", 1502), "tcp://127.0.0.1:1502"),
        ("tcp://localhost", Endpoint("tcp", "localhost", 502), "tcp://localhost:502"),
        ("TCP://127.0.0.1/", Endpoint("tcp", "127.0.0.1", 502), "tcp://127.0.0.1:502"),
        ("tcp://[::1]:5020", Endpoint("tcp", "::1", 5020), "tcp://[::1]:5020"),
        (
            "rtu+tcp://127.0.0.1:4001",
            Endpoint("rtu+tcp", "127.0.0.1", 4001),
            "rtu+tcp://127.0.0.1:4001",
        ),
        (
            "serial:///dev/ttyUSB0",
            Endpoint("serial", "/dev/ttyUSB0", 0),
            "serial:///dev/ttyUSB0?baud=9600&parity=N&bytesize=8&stopbits=1",
        ),
        (
            "serial:///dev/ttyS1?baud=2400&parity=e&stopbits=2&bytesize=7",
            Endpoint("serial", "/dev/ttyS1", 0, baudrate=2400, parity="E", bytesize=7, stopbits=2),
            "serial:///dev/ttyS1?baud=2400&parity=E&bytesize=7&stopbits=2",
        ),
    ],
)
def test_parses_urls(url: str, endpoint: Endpoint, canonical: str) -> None:
    assert parse_endpoint(url) == endpoint
    assert endpoint.url == canonical
    assert parse_endpoint(canonical) == endpoint
    assert endpoint.rtu_framing is (endpoint.scheme != "tcp")


@pytest.mark.parametrize(
    "url",
    [
        "udp://127.0.0.1:502",
        "127.0.0.1:502",
        "tcp://",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:70000",
        "tcp://127.0.0.1:port",
        "tcp://127.0.0.1:502/unit/3",
        "tcp://127.0.0.1:502?unit=3",
        "serial://",
        "serial:///",
        "serial://host/dev/ttyUSB0",
        "serial:///dev/ttyUSB0?baud=fast",
        "serial:///dev/ttyUSB0?baud=9600&parity=X",
        "serial:///dev/ttyUSB0?bytesize=9",
        "serial:///dev/ttyUSB0?stopbits=3",
        "serial:///dev/ttyUSB0?speed=9600",
        "serial:///dev/ttyUSB0?baud",
    ],
)
def test_rejects_bad_urls(url: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(url)
    assert isinstance(caught.value, CollectorError)
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.code == "bad_endpoint"

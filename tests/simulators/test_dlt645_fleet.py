"""Many simulated DL/T 645 gateways: `fleet_addresses`, `serve_fleet` and the fleet process."""

from __future__ import annotations

import pytest

from collectors.dlt645.reader import read_meter
from collectors.dlt645.transport import TcpBus
from collectors.errors import RequestTimeoutError
from simulators.dlt645_fleet import fleet_addresses, serve_fleet
from simulators.fleet_process import fleet_process


def test_addresses_are_numbered_across_the_fleet() -> None:
    assert fleet_addresses(gateways=2, meters=2, first=9) == [
        ["000000000009", "000000000010"],
        ["000000000011", "000000000012"],
    ]
    with pytest.raises(ValueError, match="meters per bus"):
        fleet_addresses(gateways=1, meters=33)
    with pytest.raises(ValueError, match="12 digits"):
        fleet_addresses(gateways=1, meters=2, first=10**12 - 1)


async def test_every_bus_answers_for_its_own_meters_only() -> None:
    buses = fleet_addresses(gateways=2, meters=3)
    async with serve_fleet(buses) as gateways:
        assert len({g.port for g in gateways}) == 2
        async with TcpBus("127.0.0.1", gateways[1].port, gap=0) as bus:
            got = await read_meter(bus, buses[1][2], timeout=2.0, retries=0)
            assert got.fields["power"] == pytest.approx(12.5)
            assert got.clock is not None
            with pytest.raises(RequestTimeoutError):
                await read_meter(bus, buses[0][0], timeout=0.2, retries=0)


async def test_fleet_process_serves_until_stdin_closes() -> None:
    args = ("--gateways=2", "--meters=32", "--first-address=100")
    async with fleet_process("simulators.dlt645_fleet", *args, ready_timeout=30) as fleet:
        printed = fleet.lines
        lines = [line.split() for line in printed]
        assert [len(words) for words in lines] == [33, 33]
        url, *addresses = lines[1]
        assert addresses[0] == "000000000132"
        host, port = url.removeprefix("tcp://").split(":")
        async with TcpBus(host, int(port), gap=0) as bus:
            got = await read_meter(bus, addresses[-1], timeout=2.0, retries=0)
        assert got.fields["voltage_a"] == pytest.approx(230.0)
    assert (fleet.killed, fleet.proc.returncode) == (False, 0)  # stopped cleanly on stdin EOF

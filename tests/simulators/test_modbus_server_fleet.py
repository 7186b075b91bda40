"""Many simulated gateways: `serve_many`, `fleet_layout` and the fleet process."""

from __future__ import annotations

import asyncio

import pytest

from collectors.modbus import list_models, load_model
from collectors.modbus.client import LinkOptions
from collectors.modbus.pool import LinkPool
from collectors.modbus.reader import read_meter
from simulators.fleet_process import fleet_process
from simulators.modbus_fleet import fleet_layout, serve_many

MODELS = [load_model(n) for n in list_models()]
SDM630 = load_model("eastron_sdm630")
OPTIONS = LinkOptions(timeout=5.0, retries=0, reconnect_min=0.05)


def test_fleet_layout_spreads_models_over_ports() -> None:
    layout = fleet_layout(ports=3, units=4, models=MODELS)
    assert [sorted(m) for m in layout] == [[1, 2, 3, 4]] * 3
    assert {m.name for port in layout for m in port.values()} == {m.name for m in MODELS}
    with pytest.raises(ValueError, match="units per port"):
        fleet_layout(ports=1, units=248, models=MODELS)


async def test_every_meter_of_every_port_reads_concurrently() -> None:
    layout = fleet_layout(ports=4, units=10, models=MODELS)
    async with serve_many(layout) as sims, LinkPool(OPTIONS) as pool:
        assert len({s.port for s in sims}) == 4
        jobs = [
            read_meter(pool, model=model, unit_id=unit, url=sim.url)
            for sim, meters in zip(sims, layout, strict=True)
            for unit, model in meters.items()
        ]
        results = await asyncio.gather(*jobs)
    assert len(pool) == 4
    assert all(r.values["power_factor"] == pytest.approx(0.95) for r in results)
    assert [r.unit_id for r in results] == [u for m in layout for u in m]
    assert all(sum(s.requests.values()) > 0 for s in sims)


async def test_fleet_process_serves_until_stdin_closes() -> None:
    args = ("--ports=2", "--units=3", "--model=eastron_sdm630")
    async with fleet_process("simulators.modbus_fleet", *args, ready_timeout=30) as fleet:
        urls = fleet.lines
        assert len(urls) == 2
        async with LinkPool(OPTIONS) as pool:
            got = await read_meter(pool, model=SDM630, unit_id=3, url=urls[1])
        assert got.values["power"] == 4.0
    assert (fleet.killed, fleet.proc.returncode) == (False, 0)  # stopped cleanly on stdin EOF

"""Many simulated Modbus gateways at once: K ports, each with its own unit ids.

Run ``python -m simulators.modbus_fleet --ports 10 --units 100`` to serve 1,000 meters
in a process of their own; it prints one URL a line, then ``ready``, and serves until
stdin closes or it is interrupted. ``--baud 9600`` puts each port's meters on an RS-485 bus at
line speed behind it (Modbus RTU 8E1, 3.5-character gaps, ``--turnaround-ms`` per answer;
`simulators.line_speed`); 0, the default, answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Literal

import uvloop

from collectors.modbus import MeterModel, list_models, load_model
from simulators.line_speed import MODBUS_TURNAROUND, LineTiming, modbus_rtu
from simulators.modbus_server import FaultHook, ModbusMeterSimulator, ValueProvider


@asynccontextmanager
async def serve_many(
    layouts: Sequence[Mapping[int, MeterModel]],
    *,
    provider: ValueProvider | None = None,
    faults: FaultHook | None = None,
    host: str = "127.0.0.1",
    framing: Literal["socket", "rtu"] = "socket",
    line: LineTiming | None = None,
) -> AsyncIterator[list[ModbusMeterSimulator]]:
    """One simulator per entry of `layouts`, each on its own free port; all stopped on exit.
    ``line``: each port's meters on an RS-485 bus at that line speed (None: at once).

    Example::

        fleet = [{u: model for u in range(1, 101)} for _ in range(10)]
        async with serve_many(fleet) as sims:
            urls = [s.url for s in sims]
    """
    sims = [
        ModbusMeterSimulator(
            m, provider=provider, faults=faults, host=host, framing=framing, line=line
        )
        for m in layouts
    ]
    try:
        for sim in sims:
            await sim.start()
        yield sims
    finally:
        for sim in sims:
            await sim.stop()


def fleet_layout(
    *, ports: int, units: int, models: Sequence[MeterModel]
) -> list[dict[int, MeterModel]]:
    """`ports` gateways of `units` meters each (unit ids 1..units), models taken in turn."""
    if not 1 <= units <= 247:
        raise ValueError(f"units per port must be 1..247, got {units}")
    return [
        {u: models[(p * units + u) % len(models)] for u in range(1, units + 1)}
        for p in range(ports)
    ]


async def _serve(args: argparse.Namespace) -> None:
    models = [load_model(name) for name in args.model or list_models()]
    layout = fleet_layout(ports=args.ports, units=args.units, models=models)
    line = modbus_rtu(args.baud, turnaround=args.turnaround_ms / 1000) if args.baud else None
    async with serve_many(layout, host=args.host, line=line) as sims:
        print("\n".join(s.url for s in sims), "ready", sep="\n", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until stdin closes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--units", type=int, default=100, help="meters per port (1..247)")
    parser.add_argument("--model", action="append", help="model name (repeatable); default all")
    parser.add_argument("--baud", type=int, default=0, help="RS-485 line speed; 0: at once")
    parser.add_argument(
        "--turnaround-ms", type=float, default=MODBUS_TURNAROUND * 1000, help="meter's answer delay"
    )
    parser.add_argument("--host", default="127.0.0.1")
    with suppress(KeyboardInterrupt):
        uvloop.run(_serve(parser.parse_args(argv)))  # a fleet of thousands of sockets


if __name__ == "__main__":
    main()

"""Many simulated DL/T 645 TCP gateways at once: G gateways, one RS-485 bus of meters each.

Run ``python -m simulators.dlt645_fleet --gateways 10 --meters 32`` to serve 320 meters in
a process of their own. It prints one line per gateway, its URL then the addresses of the
meters on its bus (``tcp://127.0.0.1:40123 000000000001 000000000002 ...``), then
``ready``, and serves until stdin closes or it is interrupted. Meter addresses are
numbered across the fleet from ``--first-address`` (12 digits). ``--baud 2400`` runs every bus
at line speed (8E1; the meters answer ``--turnaround-ms`` after a request, default 20 ms;
`simulators.line_speed`); 0, the default, answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

import uvloop

from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, LinearProvider, ValueProvider
from simulators.line_speed import DLT645_TURNAROUND

#: The most meters one RS-485 segment carries without a repeater (unit loads).
MAX_PER_BUS = 32
#: Seconds between trims of the buses' exchange logs (a long run would keep every request).
_TRIM_EVERY = 5.0


def fleet_addresses(*, gateways: int, meters: int, first: int = 1) -> list[list[str]]:
    """The meter addresses of each gateway's bus, numbered in turn from ``first``.

    Example::

        fleet_addresses(gateways=2, meters=2)
        # [['000000000001', '000000000002'], ['000000000003', '000000000004']]
    """
    if not 1 <= meters <= MAX_PER_BUS:
        raise ValueError(f"meters per bus must be 1..{MAX_PER_BUS}, got {meters}")
    if gateways < 0 or first < 0 or first + gateways * meters > 10**12:
        raise ValueError("addresses must fit in 12 digits")
    return [[f"{first + g * meters + m:012d}" for m in range(meters)] for g in range(gateways)]


@asynccontextmanager
async def serve_fleet(
    buses: Sequence[Sequence[str]],
    *,
    provider: ValueProvider | None = None,
    baud: int = 0,
    turnaround: float = DLT645_TURNAROUND,
    host: str = "127.0.0.1",
) -> AsyncIterator[list[Dlt645GatewaySimulator]]:
    """One gateway per entry of ``buses`` (the addresses on its bus), each on a free port;
    all closed on exit. ``baud`` > 0 runs every bus at line speed, the meters answering
    ``turnaround`` s after each request (0: answer at once).

    Example::

        async with serve_fleet(fleet_addresses(gateways=4, meters=32)) as gateways:
            urls = [g.url for g in gateways]
    """
    values = provider or LinearProvider()
    gateways = [
        Dlt645GatewaySimulator(
            SimulatedBus(
                [Dlt645Meter(a) for a in addresses],
                provider=values,
                baud=baud,
                turnaround=turnaround,
            ),
            host=host,
        )
        for addresses in buses
    ]
    trim = asyncio.create_task(_trim_logs(gateways))
    try:
        for gateway in gateways:
            await gateway.start()
        yield gateways
    finally:
        trim.cancel()
        await asyncio.gather(trim, return_exceptions=True)
        for gateway in gateways:
            await gateway.aclose()


async def _trim_logs(gateways: Sequence[Dlt645GatewaySimulator]) -> None:
    while True:
        await asyncio.sleep(_TRIM_EVERY)
        for gateway in gateways:
            gateway.bus.exchanges.clear()


async def _serve(args: argparse.Namespace) -> None:
    buses = fleet_addresses(gateways=args.gateways, meters=args.meters, first=args.first_address)
    turnaround = args.turnaround_ms / 1000
    async with serve_fleet(
        buses, baud=args.baud, turnaround=turnaround, host=args.host
    ) as gateways:
        lines = [" ".join((g.url, *bus)) for g, bus in zip(gateways, buses, strict=True)]
        print(*lines, "ready", sep="\n", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until stdin closes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--meters", type=int, default=MAX_PER_BUS, help="meters per bus")
    parser.add_argument("--first-address", type=int, default=1, help="first meter address")
    parser.add_argument("--baud", type=int, default=0, help="line speed; 0: answer at once")
    parser.add_argument(
        "--turnaround-ms",
        type=float,
        default=DLT645_TURNAROUND * 1000,
        help="meters' answer delay (with --baud)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    with suppress(KeyboardInterrupt):
        uvloop.run(_serve(parser.parse_args(argv)))  # a fleet of thousands of sockets


if __name__ == "__main__":
    main()

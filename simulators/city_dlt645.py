"""A city's DL/T 645 gateway: its meters on a simulated RS-485 bus behind a TCP server.

The bus keeps true RS-485 semantics (`simulators.dlt645_gateway.SimulatedBus`: only the
addressed meter answers, replies collide, one frame on the wire at a time). Values come
from the simulator core through `ReadingProvider`, so the meter's date and time are its
own (drifting) clock. Faults in force at each request:

* ``no_answer``, or not yet installed: no reply;
* ``late_answer``: the reply after ``delay`` seconds;
* ``corrupt_checksum``: a reply with a wrong CS byte;
* ``garbage_values``: a value the meter cannot encode goes out as non-BCD bytes (0xFF);
* ``gateway_offline``: connections are dropped (checked every second by `supervise`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from collectors.dlt645.codec import Frame
from meterhub.reading import Reading
from simulators.config import Dlt645Address
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, ReadingProvider, ValueProvider
from simulators.fleet import CityFleet, Clock, installed, misbehaviour, wall_clock
from simulators.meter import SimulatedMeter


@dataclass(slots=True, kw_only=True)
class CityDlt645Meter(Dlt645Meter):
    """A `Dlt645Meter` whose faults follow its simulated meter's fault set, per request."""

    sim: SimulatedMeter

    def respond(self, request: Frame, now: dt.datetime, provider: ValueProvider) -> bytes | None:
        if not installed(self.sim, now):
            return None
        odd = misbehaviour(self.sim, now)
        self.faults.no_answer = odd.silent
        self.faults.late_answer = odd.delay
        self.faults.corrupt_checksum = odd.corrupt
        return Dlt645Meter.respond(self, request, now, provider)


def dlt645_gateway(
    fleet: CityFleet,
    gateway_id: str,
    *,
    clock: Clock = wall_clock,
    host: str | None = None,
    baud: int = 0,
) -> Dlt645GatewaySimulator:
    """The TCP transparent gateway ``gateway_id`` with its bus, on its city port (not yet
    started); ``host`` overrides the city's listening address; ``baud`` > 0 runs the bus at
    that line speed (`simulators.line_speed.dlt645_line`; 0: the meters answer at once).

    Example::

        gateway = dlt645_gateway(fleet, "dlt-001")
        async with gateway:
            async with TcpBus("127.0.0.1", gateway.port, gap=0) as bus:
                values = await read_meter(bus, "202501234567")
    """
    spec = fleet.city.gateway(gateway_id)
    by_address: dict[str, SimulatedMeter] = {}
    for meter in fleet.on(gateway_id):
        address = meter.spec.address
        assert isinstance(address, Dlt645Address)  # the city checked it
        by_address[address.address] = meter

    def reading_at(address: str, now: dt.datetime) -> Reading:
        return by_address[address].snapshot(now)

    bus = SimulatedBus(
        [CityDlt645Meter(address, sim=meter) for address, meter in by_address.items()],
        provider=ReadingProvider(reading_at),
        clock=clock,
        baud=baud,
    )
    assert spec.port is not None  # dlt645 gateways have one (the city checked it)
    return Dlt645GatewaySimulator(bus, host=host or spec.host, port=spec.port)


async def supervise(
    gateway: Dlt645GatewaySimulator,
    *,
    offline: Callable[[], bool],
    every: float = 1.0,
    keep: int = 1000,
) -> None:
    """Take ``gateway`` offline while ``offline()`` holds and back online after, and keep
    only the last ``keep`` requests of its bus's log (a long run would keep them all);
    runs until cancelled.

    Example::

        task = asyncio.create_task(supervise(
            gateway, offline=lambda: fleet.gateway_offline("dlt-001", wall_clock())))
    """
    while True:
        down = offline()
        if down and not gateway.offline:
            gateway.go_offline()
        elif not down and gateway.offline:
            gateway.go_online()
        del gateway.bus.exchanges[:-keep]
        await asyncio.sleep(every)

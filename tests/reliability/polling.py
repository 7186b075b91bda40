"""The polling path of the fault suite: a simulated Modbus TCP gateway and a simulated
DL/T 645 transparent serial gateway on 127.0.0.1, each with meters behind it, polled by the
collector's own `LinkWorker` (what `meterhub collect` runs per link) into a real sink.

The stream runs on a virtual minute clock: cycle n is the tick T0 + n minutes, so an hour
of a meter's life (and a gateway outage across several 15-minute intervals) takes seconds.
`ClockedPoller` stamps each poll result with that tick and moves the meter's clock reading
by the same amount (the drift the scheduler sees is the meter's real one). `BookingSink`
books every reading it is given (sent) and every one ``submit`` returned for (acknowledged).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from collectors.dlt645.poller import Dlt645Poller
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.modbus.register_map import load_model
from collectors.scheduler import LinkWorker, ScheduleOptions
from collectors.targets import Poller, PollResult, PollTarget, load_targets
from collectors.terminals import TerminalBook
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter
from simulators.dlt645_meter import LinearProvider as DltProvider
from simulators.modbus_server import LinearProvider as ModbusProvider
from simulators.modbus_server import ModbusMeterSimulator
from tests.reliability.accounting import Ledger
from tests.support import create_meters

T0 = datetime(2026, 3, 2, tzinfo=LOCAL_TZ)  # a Monday before today: clock checks are due
STEP = timedelta(minutes=1)
OPTIONS = ScheduleOptions(timeout=0.3, retries=1, backoff=0.01, offline_after=3)
CLOCK_EVERY_POLL = replace(OPTIONS, clock_every=timedelta(0))
# The Modbus link's reconnect back-off (1 s doubling to 60 s, less than a cycle) on the
# virtual clock's scale, where a minute passes in a fraction of a second.
LINK = LinkOptions(timeout=0.3, retries=0, reconnect_min=0.02, reconnect_max=1.0)


def tick(n: int) -> datetime:
    return T0 + n * STEP


@dataclass(slots=True)
class VirtualClock:
    now: datetime = T0


class ClockedPoller:
    """A real poller whose results are stamped with the virtual clock's tick."""

    def __init__(self, inner: Poller, clock: VirtualClock) -> None:
        self._inner, self._clock = inner, clock

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        real = datetime.now(UTC)
        result = await self._inner.poll(target, read_clock=read_clock)
        meter_time = result.meter_time
        if meter_time is not None:
            meter_time = self._clock.now + (meter_time - real)
        return replace(result, measured_at=self._clock.now, meter_time=meter_time)

    async def close(self) -> None:
        await self._inner.close()


class BookingSink(IngestSink):
    """An `IngestSink` that books what the collector hands it in a `Ledger`."""

    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        super().__init__(settings)
        self.ledger = ledger

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        self.ledger.send(((r.meter_id, r.ts), r.energy) for r in readings)
        result = await super().submit(readings, rejects=rejects)
        self.ledger.ack((r.meter_id, r.ts) for r in readings)
        return result


@dataclass
class PollFleet:
    """Both gateways, their meters (protocol -> meter ids) and the DL/T 645 meters."""

    modbus: ModbusMeterSimulator
    dlt645: Dlt645GatewaySimulator
    meters: dict[str, list[int]]
    dlt645_meters: list[Dlt645Meter]
    _dlt645_port: int = 0

    @property
    def dlt645_link(self) -> str:
        """The bus as registered: 5 ms between frames (50 ms by default) to keep cycles short."""
        return f"{self.dlt645.url}?gap_ms=5"

    async def stop_dlt645(self) -> None:
        self._dlt645_port = self.dlt645.port
        await self.dlt645.aclose()

    async def start_dlt645(self) -> None:
        """The gateway back on its port (a new process, as after a power cut)."""
        self.dlt645 = Dlt645GatewaySimulator(self.dlt645.bus, port=self._dlt645_port)
        await self.dlt645.start()


async def _register(conn: asyncpg.Connection, meter_id: int, protocol: str, **kw: object) -> None:
    await conn.execute(
        "UPDATE meters SET protocol = $2, model = $3, address = $4::jsonb WHERE id = $1",
        meter_id,
        protocol,
        "eastron_sdm630" if protocol == "modbus" else None,
        orjson.dumps(kw).decode(),
    )


@asynccontextmanager
async def poll_fleet(conn: asyncpg.Connection, *, per_gateway: int = 4) -> AsyncIterator[PollFleet]:
    """Both gateways running with ``per_gateway`` meters each, registered in ``conn``'s
    database; stopped at the end."""
    model = load_model("eastron_sdm630")
    provider = ModbusProvider(epoch=datetime.now(UTC) - timedelta(hours=1))
    units = range(1, per_gateway + 1)
    modbus = ModbusMeterSimulator(dict.fromkeys(units, model), provider=provider)
    addresses = [f"{900_000 + n:012d}" for n in units]
    dlt_meters = [Dlt645Meter(a) for a in addresses]
    dlt645 = Dlt645GatewaySimulator(SimulatedBus(dlt_meters, provider=DltProvider()))
    await modbus.start()
    await dlt645.start()
    fleet = PollFleet(modbus, dlt645, {}, dlt_meters)
    try:
        fleet.meters["modbus"] = await create_meters(conn, per_gateway)
        for meter_id, unit in zip(fleet.meters["modbus"], units, strict=True):
            await _register(
                conn, meter_id, "modbus", host="127.0.0.1", port=modbus.port, unit_id=unit
            )
        fleet.meters["dlt645"] = await create_meters(conn, per_gateway)
        for meter_id, address in zip(fleet.meters["dlt645"], addresses, strict=True):
            await _register(conn, meter_id, "dlt645", address=address, bus=fleet.dlt645_link)
        yield fleet
    finally:
        await modbus.stop()
        await fleet.dlt645.aclose()


class PollStream:
    """The collector's link workers over the fleet, one cycle per virtual minute."""

    def __init__(self, sink: IngestSink, options: ScheduleOptions = OPTIONS) -> None:
        self.clock = VirtualClock()
        self.book = TerminalBook(
            offline_after=options.offline_after, drift_tolerance=options.drift_tolerance
        )
        self._sink, self._options = sink, options
        self._pollers: dict[str, Poller] = {
            "modbus": ClockedPoller(ModbusPoller(LINK), self.clock),
            "dlt645": ClockedPoller(Dlt645Poller(timeout=0.3, retries=0), self.clock),
        }
        self.workers: list[LinkWorker] = []
        self.cycle_seconds: list[float] = []

    async def load(self, conn: asyncpg.Connection, fleet: PollFleet) -> None:
        """The fleet's links as `meterhub collect` loads them from the registry."""
        ours = {fleet.modbus.url, fleet.dlt645_link}
        links = await load_targets(conn, list(self._pollers))
        self.workers = [
            LinkWorker(
                targets,
                poller=self._pollers[targets[0].protocol],
                sink=self._sink,
                book=self.book,
                options=self._options,
            )
            for link, targets in links.items()
            if link in ours
        ]
        assert len(self.workers) == 2

    async def run(
        self,
        cycles: range,
        *,
        pace: float = 0.05,
        before: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """Cycle n at tick(n) for n in ``cycles``; ``before(n)`` may inject a fault first."""
        for n in cycles:
            self.clock.now = tick(n)
            if before is not None:
                await before(n)
            started = time.monotonic()
            await asyncio.gather(*(w.cycle(w.targets) for w in self.workers))
            self.cycle_seconds.append(time.monotonic() - started)
            await asyncio.sleep(pace)

    async def close(self) -> None:
        for poller in self._pollers.values():
            await poller.close()

"""Polled readings reach the database while their bus is still being read (real TCP to a
simulated DL/T 645 gateway, the real sink and database), in batches shared by links, each
reading once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import asyncpg
import orjson
import pytest

from collectors.dlt645.poller import Dlt645Poller
from collectors.handoff import Handoff
from collectors.scheduler import LinkWorker, ScheduleOptions
from collectors.targets import PollTarget, load_targets
from collectors.terminals import TerminalBook
from ingest.errors import SinkClosedError
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.reading import Reading
from meterhub.settings import Settings
from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
from simulators.dlt645_meter import Dlt645Meter, LinearProvider
from tests.ingest.conftest import create_meters

pytestmark = pytest.mark.integration

OPTIONS = ScheduleOptions(timeout=1.0, retries=0, handoff_delay=0.1)
#: A slow meter: 80 ms to turn each request round (a cycle of the bus takes seconds).
SLOW = 0.08


class CountingSink(IngestSink):
    """The real sink, noting the size of every submit."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.submits: list[int] = []

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        self.submits.append(len(readings))
        return await super().submit(readings, rejects=rejects)


def _bus(first: int, n: int, *, reply_delay: float = SLOW) -> list[Dlt645Meter]:
    return [Dlt645Meter(f"{a:012d}", reply_delay=reply_delay) for a in range(first, first + n)]


async def _targets(
    db: asyncpg.Connection, gateway: Dlt645GatewaySimulator, meters: list[Dlt645Meter]
) -> tuple[list[int], list[PollTarget]]:
    """The bus's meters registered (5 ms between frames), and its targets in bus order."""
    ids = await create_meters(db, len(meters))
    link = f"{gateway.url}?gap_ms=5"
    for meter_id, meter in zip(ids, meters, strict=True):
        await db.execute(
            "UPDATE meters SET protocol = 'dlt645', address = $2::jsonb WHERE id = $1",
            meter_id,
            orjson.dumps({"address": meter.address, "bus": link}).decode(),
        )
    targets = (await load_targets(db, ["dlt645"]))[link]
    return ids, sorted(targets, key=lambda t: t.meter_id)


def _book() -> TerminalBook:
    return TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))


async def _first_stored(db: asyncpg.Connection, meter_id: int, cycle: asyncio.Task[None]) -> float:
    """The loop time at which ``meter_id``'s reading is first seen in `readings`."""
    loop = asyncio.get_running_loop()
    while not await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter_id):
        assert not cycle.done() or cycle.exception() is None
        if cycle.done():
            break
        await asyncio.sleep(0.01)
    return loop.time()


async def test_the_first_meter_is_stored_before_the_last_is_read(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = _bus(101, 5)
    bus = SimulatedBus(meters, provider=LinearProvider())
    async with Dlt645GatewaySimulator(bus) as gateway:
        ids, targets = await _targets(db, gateway, meters)
        poller = Dlt645Poller(timeout=1.0, retries=0)
        handoff = Handoff(sink, delay=OPTIONS.handoff_delay)
        worker = LinkWorker(
            targets, poller=poller, sink=sink, book=_book(), options=OPTIONS, handoff=handoff
        )
        try:
            cycle = asyncio.create_task(worker.cycle(targets))
            async with asyncio.timeout(20):  # a batch never sent would hang the cycle
                stored_at = await _first_stored(db, ids[0], cycle)
                await cycle
            await handoff.drain()
        finally:
            await poller.close()
    last = [e.received_at for e in bus.exchanges if e.address == meters[-1].address]
    assert last, "the last meter was read"
    # The first meter's reading was queryable before the bus got to the last meter at all.
    assert stored_at < min(last)
    rows = await db.fetch(
        "SELECT meter_id, count(*) AS n FROM readings WHERE meter_id = ANY($1) GROUP BY 1", ids
    )
    assert sorted((r["meter_id"], r["n"]) for r in rows) == [(i, 1) for i in ids]


async def test_links_share_batches_and_each_reading_is_stored_once(
    sink_settings: Settings, db: asyncpg.Connection
) -> None:
    """Three buses polled at once through one handoff: fewer submits than readings (batched
    across buses by time), every reading in exactly one, each stored once."""
    buses = [SimulatedBus(_bus(200 + 10 * k, 4, reply_delay=0.01)) for k in range(3)]
    sink = CountingSink(sink_settings)
    async with sink:
        handoff = Handoff(sink, delay=0.3)
        gateways = [Dlt645GatewaySimulator(bus) for bus in buses]
        for gateway in gateways:
            await gateway.start()
        poller = Dlt645Poller(timeout=1.0, retries=0)
        try:
            workers, ids = [], []
            for gateway, bus in zip(gateways, buses, strict=True):
                meter_ids, targets = await _targets(db, gateway, list(bus.meters.values()))
                ids += meter_ids
                workers.append(
                    LinkWorker(
                        targets,
                        poller=poller,
                        sink=sink,
                        book=_book(),
                        options=OPTIONS,
                        handoff=handoff,
                    )
                )
            async with asyncio.timeout(20):  # a batch never sent would hang the cycles
                await asyncio.gather(*(w.cycle(w.targets) for w in workers))
            await handoff.drain()
        finally:
            await poller.close()
            for gateway in gateways:
                await gateway.aclose()
    assert sum(sink.submits) == len(ids) == 12
    assert len(sink.submits) < len(ids)
    counts = await db.fetch(
        "SELECT meter_id, count(*) AS n FROM readings WHERE meter_id = ANY($1) GROUP BY 1", ids
    )
    assert sorted((r["meter_id"], r["n"]) for r in counts) == [(i, 1) for i in sorted(ids)]


async def test_a_cycle_cut_short_keeps_what_it_read(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    """A link reloaded mid-cycle (its task cancelled): the readings already taken are
    stored once the handoff drains, the rest were never read."""
    meters = _bus(301, 5)
    bus = SimulatedBus(meters, provider=LinearProvider())
    async with Dlt645GatewaySimulator(bus) as gateway:
        ids, targets = await _targets(db, gateway, meters)
        poller = Dlt645Poller(timeout=1.0, retries=0)
        handoff = Handoff(sink, delay=5.0)  # nothing goes by time during this test
        worker = LinkWorker(
            targets, poller=poller, sink=sink, book=_book(), options=OPTIONS, handoff=handoff
        )
        try:
            cycle = asyncio.create_task(worker.cycle(targets))
            while not any(e.address == meters[2].address for e in bus.exchanges):
                await asyncio.sleep(0.01)
            cycle.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cycle
            assert not await db.fetchval(
                "SELECT count(*) FROM readings WHERE meter_id = ANY($1)", ids
            )
            await handoff.drain()
        finally:
            await poller.close()
    stored = await db.fetch("SELECT meter_id FROM readings WHERE meter_id = ANY($1)", ids)
    assert sorted(r["meter_id"] for r in stored) == ids[:2]


async def test_a_failed_batch_fails_the_cycles_in_it(
    sink_settings: Settings, db: asyncpg.Connection
) -> None:
    meters = _bus(401, 2, reply_delay=0.0)
    async with Dlt645GatewaySimulator(SimulatedBus(meters)) as gateway:
        _, targets = await _targets(db, gateway, meters)
        sink = IngestSink(sink_settings)
        await sink.start()
        await sink.close()  # every submit now raises SinkClosedError
        poller = Dlt645Poller(timeout=1.0, retries=0)
        worker = LinkWorker(targets, poller=poller, sink=sink, book=_book(), options=OPTIONS)
        try:
            with pytest.raises(SinkClosedError):
                async with asyncio.timeout(20):
                    await worker.cycle(targets)
        finally:
            await poller.close()

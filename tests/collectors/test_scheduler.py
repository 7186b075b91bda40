"""The poll scheduler over real TCP: Modbus simulator -> collector -> ingest -> database."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.modbus.register_map import load_model
from collectors.scheduler import (
    CYCLE_TICK,
    LinkWorker,
    ScheduleOptions,
    Scheduler,
    is_due,
    next_tick,
)
from collectors.targets import PollResult, PollTarget, load_targets
from collectors.terminals import TerminalBook
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.modbus_server import Fault, LinearProvider, ModbusMeterSimulator
from tests.ingest.conftest import create_meters

pytestmark = pytest.mark.integration


def test_ticks_are_aligned_to_shanghai_quarter_hours() -> None:
    now = datetime(2026, 3, 2, 8, 7, 30, tzinfo=UTC).timestamp()  # 16:07:30 in Shanghai
    tick = next_tick(now, 900)
    assert datetime.fromtimestamp(tick, UTC) == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    day = next_tick(now, 86_400)
    assert datetime.fromtimestamp(day, UTC) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert is_due(day, 900) and is_due(day, 60) and not is_due(day + 60, 900)


async def _register(db: asyncpg.Connection, meters: list[int], url: str, units: list[int]) -> None:
    host, port = url.removeprefix("tcp://").split(":")
    for meter_id, unit in zip(meters, units, strict=True):
        await db.execute(
            "UPDATE meters SET protocol = 'modbus', model = 'eastron_sdm630', address = $2::jsonb "
            "WHERE id = $1",
            meter_id,
            orjson.dumps({"host": host, "port": int(port), "unit_id": unit}).decode(),
        )


async def test_cycle_reads_meters_marks_offline_and_quarantines_garbage(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    model = load_model("eastron_sdm630")
    provider = LinearProvider(epoch=datetime.now(UTC) - timedelta(hours=1))

    def faults(unit: int, now: datetime) -> Fault | None:
        if unit == 3:
            return Fault.no_answer()
        if unit == 2:
            return Fault.garbage({"power": math.nan})
        return None

    async with ModbusMeterSimulator(
        {1: model, 2: model, 3: model}, provider=provider, faults=faults
    ) as sim:
        meters = await create_meters(db, 3)
        await _register(db, meters, sim.url, [1, 2, 3])
        (targets,) = [
            t for link, t in (await load_targets(db, ["modbus"])).items() if link == sim.url
        ]
        book = TerminalBook(offline_after=2, drift_tolerance=timedelta(seconds=30))
        options = ScheduleOptions(timeout=0.3, retries=1, backoff=0.01)
        poller = ModbusPoller(LinkOptions(timeout=0.3, retries=0))
        worker = LinkWorker(targets, poller=poller, sink=sink, book=book, options=options)
        try:
            for _ in range(2):
                await worker.cycle(targets)
        finally:
            await poller.close()
        events = await book.flush(db)

    stored = await db.fetch(
        "SELECT meter_id, energy, power, voltage_a FROM readings WHERE meter_id = ANY($1) "
        "ORDER BY meter_id, ts",
        meters,
    )
    assert [r["meter_id"] for r in stored] == [meters[0]] * 2 + [meters[1]] * 2
    first = stored[0]
    assert first["voltage_a"] == pytest.approx(230.0)
    assert first["power"] == pytest.approx(2.0)  # unit 1 draws 1 + 1 kW
    assert first["energy"] == pytest.approx(1000.0 + 1 + 2.0, abs=0.01)
    assert [r["power"] for r in stored[2:]] == [None, None]  # the NaN was not stored
    garbage = await db.fetch("SELECT reason, detail FROM quarantine WHERE meter_id = $1", meters[1])
    assert [(g["reason"], g["detail"].split(":")[0]) for g in garbage] == [
        ("non_finite", "power")
    ] * 2
    assert [(e.meter_id, e.kind) for e in events] == [(meters[2], "offline")]
    status = await db.fetch(
        "SELECT meter_id, online, consecutive_failures FROM terminal_status "
        "WHERE meter_id = ANY($1) ORDER BY meter_id",
        meters,
    )
    assert [(s["online"], s["consecutive_failures"]) for s in status] == [
        (True, 0),
        (True, 0),
        (False, 2),
    ]
    assert sim.requests[3] == 2 * 2  # two cycles, one retry each


async def test_dlt645_bus_cycle_reads_values_and_flags_clock_drift(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    from collectors.dlt645.poller import Dlt645Poller
    from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
    from simulators.dlt645_meter import Dlt645Meter, LinearProvider, MeterFaults

    addresses = [f"{n:012d}" for n in (1, 2, 3, 4)]
    provider = LinearProvider()
    meters_on_bus = [
        Dlt645Meter(addresses[0]),
        Dlt645Meter(addresses[1], clock_offset=600),  # ten minutes fast
        Dlt645Meter(addresses[2], faults=MeterFaults(garbage_values=True)),
        Dlt645Meter(addresses[3], faults=MeterFaults(no_answer=True)),
    ]
    async with Dlt645GatewaySimulator(SimulatedBus(meters_on_bus, provider=provider)) as gw:
        meters = await create_meters(db, 4)
        for meter_id, address in zip(meters, addresses, strict=True):
            await db.execute(
                "UPDATE meters SET protocol = 'dlt645', address = $2::jsonb WHERE id = $1",
                meter_id,
                orjson.dumps({"address": address, "bus": gw.url}).decode(),
            )
        (targets,) = [
            t for link, t in (await load_targets(db, ["dlt645"])).items() if link == gw.url
        ]
        book = TerminalBook(offline_after=1, drift_tolerance=timedelta(seconds=30))
        poller = Dlt645Poller(timeout=0.3, retries=0)
        worker = LinkWorker(
            targets,
            poller=poller,
            sink=sink,
            book=book,
            options=ScheduleOptions(timeout=0.3, retries=0),
        )
        try:
            await worker.cycle(targets)
        finally:
            await poller.close()
        events = await book.flush(db)

    stored = await db.fetch(
        "SELECT meter_id, ts, energy, energy_sharp, quality FROM readings "
        "WHERE meter_id = ANY($1) ORDER BY meter_id",
        meters,
    )
    assert [r["meter_id"] for r in stored] == meters[:2]  # garbage only: no reading ...
    first = stored[0]
    assert first["energy"] == pytest.approx(
        provider.energies(addresses[0], first["ts"])[0], abs=0.02
    )
    assert [r["quality"] for r in stored] == [0, 2]  # 2 = CLOCK_DRIFT
    garbage = await db.fetchval(
        "SELECT count(*) FROM quarantine WHERE meter_id = $1 AND reason = 'malformed_payload'",
        meters[2],
    )
    assert garbage > 0  # ... but the garbage quarantined, and the poll failed
    assert sorted((e.meter_id, e.kind) for e in events) == sorted(
        [(meters[1], "clock_drift"), (meters[2], "offline"), (meters[3], "offline")]
    )
    drift = await db.fetchval(
        "SELECT clock_drift_s FROM terminal_status WHERE meter_id = $1", meters[1]
    )
    assert drift == pytest.approx(600, abs=5)


async def test_scheduler_keeps_running_while_the_database_is_away(
    sink_settings: Settings,
) -> None:
    import asyncio

    from pydantic import SecretStr

    dead = sink_settings.model_copy(
        update={"database_url": SecretStr("postgresql://nobody:x@127.0.0.1:9/none")}
    )
    poller = ModbusPoller()
    stop = asyncio.Event()
    async with IngestSink(dead) as dead_sink:
        scheduler = Scheduler(
            dead,
            sink=dead_sink,
            pollers={"modbus": poller},
            options=ScheduleOptions(reload_every=0.1, flush_every=0.1),
        )
        task = asyncio.create_task(scheduler.run(stop))
        await asyncio.sleep(0.5)
        assert not task.done()  # reload and flush failures are logged, not fatal
        stop.set()
        await asyncio.wait_for(task, 10)
    await poller.close()


async def test_a_cleanly_stopped_collector_removes_its_heartbeat(
    sink: IngestSink, sink_settings: Settings, db: asyncpg.Connection
) -> None:
    import asyncio

    poller = ModbusPoller()
    stop = asyncio.Event()
    scheduler = Scheduler(
        sink_settings,
        sink=sink,
        pollers={"modbus": poller},
        options=ScheduleOptions(reload_every=0.1, flush_every=0.1),
        name="heartbeat-test",
    )
    task = asyncio.create_task(scheduler.run(stop))
    async with asyncio.timeout(10):
        while not await db.fetchval(
            "SELECT count(*) FROM collector_heartbeats WHERE name = 'heartbeat-test'"
        ):
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    await poller.close()
    assert not await db.fetchval(
        "SELECT count(*) FROM collector_heartbeats WHERE name = 'heartbeat-test'"
    )


def _registry_loads() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("meterhub_collector_registry_loads_total") or 0.0


async def test_registry_reloads_pick_up_edits_and_leave_unchanged_links_alone(
    sink: IngestSink, sink_settings: Settings, db: asyncpg.Connection
) -> None:
    """Each reload first asks the database for a fingerprint of the polled meters; while it
    is unchanged the link workers keep running as they are (not rebuilt), and an edit, a
    new meter or a removal reaches them at the next reload."""
    import asyncio

    async with (
        ModbusMeterSimulator({1: load_model("eastron_sdm630")}) as one,
        ModbusMeterSimulator({1: load_model("eastron_sdm630")}) as two,
    ):
        meters = await create_meters(db, 2)
        await _register(db, meters[:1], one.url, [1])
        # Polled once a day: no poll falls in this test, only reloads.
        await db.execute("UPDATE meters SET poll_interval = '1 day' WHERE id = ANY($1)", meters)
        poller = ModbusPoller()
        scheduler = Scheduler(
            sink_settings,
            sink=sink,
            pollers={"modbus": poller},
            options=ScheduleOptions(reload_every=0.05, flush_every=0.1),
        )

        def mine() -> dict[str, list[int]]:
            return {
                link: [t.meter_id for t in targets]
                for link, targets in scheduler.links.items()
                if any(t.meter_id in meters for t in targets)
            }

        async def until(expected: dict[str, list[int]]) -> None:
            async with asyncio.timeout(10):
                while mine() != expected:
                    await asyncio.sleep(0.02)

        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        try:
            await until({one.url: meters[:1]})
            running, loads = scheduler._links[one.url][1], _registry_loads()
            await asyncio.sleep(0.3)  # several reloads of an unchanged registry
            assert scheduler._links[one.url][1] is running
            assert _registry_loads() == loads  # the fingerprint matched: nothing rebuilt
            await _register(db, meters[1:], one.url, [2])  # a meter added to the link
            await until({one.url: meters})
            await _register(db, meters[:1], two.url, [1])  # a meter moved to another link
            await until({one.url: meters[1:], two.url: meters[:1]})
            await db.execute("UPDATE meters SET removed_at = now() WHERE id = $1", meters[1])
            await until({two.url: meters[:1]})
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await poller.close()


async def test_a_dlt645_meter_refusing_every_identifier_is_a_failed_poll(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    from collectors.dlt645.poller import Dlt645Poller
    from collectors.dlt645.reader import DEFAULT_SET
    from simulators.dlt645_gateway import Dlt645GatewaySimulator, SimulatedBus
    from simulators.dlt645_meter import Dlt645Meter, LinearProvider, MeterFaults

    every_di = frozenset(di for q in DEFAULT_SET for di in (q.di, *q.fallback))
    refusing = Dlt645Meter("000000000009", faults=MeterFaults(no_data=every_di))
    bus = SimulatedBus([refusing, Dlt645Meter("000000000010")], provider=LinearProvider())
    async with Dlt645GatewaySimulator(bus) as gw:
        meters = await create_meters(db, 2)
        for meter_id, address in zip(meters, ("000000000009", "000000000010"), strict=True):
            await db.execute(
                "UPDATE meters SET protocol = 'dlt645', address = $2::jsonb WHERE id = $1",
                meter_id,
                orjson.dumps({"address": address, "bus": gw.url}).decode(),
            )
        (targets,) = [
            t for link, t in (await load_targets(db, ["dlt645"])).items() if link == gw.url
        ]
        book = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
        poller = Dlt645Poller(timeout=0.3, retries=0)
        options = ScheduleOptions(timeout=0.3, retries=0)
        worker = LinkWorker(targets, poller=poller, sink=sink, book=book, options=options)
        try:
            await worker.cycle(targets)
        finally:
            await poller.close()
        await book.flush(db)

    stored = await db.fetch("SELECT meter_id FROM readings WHERE meter_id = ANY($1)", meters)
    assert [r["meter_id"] for r in stored] == [meters[1]]  # no all-NULL row for the refuser
    status = await db.fetch(
        "SELECT meter_id, consecutive_failures, last_success_at, last_error FROM terminal_status "
        "WHERE meter_id = ANY($1) ORDER BY meter_id",
        meters,
    )
    refuser, good = status
    assert (refuser["consecutive_failures"], refuser["last_success_at"]) == (1, None)
    assert refuser["last_error"].startswith("no value read: meter 000000000009 replied")
    assert "NO_DATA" in refuser["last_error"] and "di 0001FF00" in refuser["last_error"]
    assert (good["consecutive_failures"], good["last_error"]) == (0, None)


async def test_a_modbus_meter_answering_only_garbage_is_a_failed_poll(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    model = load_model("eastron_sdm630")
    nan_everywhere = Fault.garbage({p.field: math.nan for p in model.points})
    provider = LinearProvider(epoch=datetime.now(UTC) - timedelta(hours=1))
    async with ModbusMeterSimulator(
        {1: model}, provider=provider, faults=lambda unit, now: nan_everywhere
    ) as sim:
        (meter,) = await create_meters(db, 1)
        await _register(db, [meter], sim.url, [1])
        (targets,) = [
            t for link, t in (await load_targets(db, ["modbus"])).items() if link == sim.url
        ]
        book = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
        poller = ModbusPoller(LinkOptions(timeout=0.3, retries=0))
        options = ScheduleOptions(timeout=0.3, retries=0)
        worker = LinkWorker(targets, poller=poller, sink=sink, book=book, options=options)
        try:
            await worker.cycle(targets)
        finally:
            await poller.close()
        await book.flush(db)
    assert not await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter)
    quarantined = await db.fetchval(
        "SELECT count(*) FROM quarantine WHERE meter_id = $1 AND reason = 'non_finite'", meter
    )
    assert quarantined == len(model.points)
    status = await db.fetchrow(
        "SELECT consecutive_failures, last_error FROM terminal_status WHERE meter_id = $1", meter
    )
    assert status is not None and status["consecutive_failures"] == 1
    error = status["last_error"]
    assert error.startswith("no value read: ") and "power" in error


def test_first_clock_reads_are_due_at_once_unless_spread() -> None:
    book = TerminalBook(drift_tolerance=timedelta(seconds=30))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    every = timedelta(hours=1)
    assert all(book.clock_due(m, now, every) for m in range(1, 101))
    book.clock(1, meter_time=now, host_time=now)
    assert not book.clock_due(1, now + timedelta(minutes=59), every)
    assert book.clock_due(1, now + every, every)


def test_spread_first_clock_reads_fall_across_the_hour_and_each_meter_gets_one() -> None:
    book = TerminalBook(drift_tolerance=timedelta(seconds=30))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    every, meters = timedelta(hours=1), range(1, 1201)
    first_due: dict[int, int] = {}
    for minute in range(61):  # a poll a minute
        at = now + timedelta(minutes=minute)
        for m in meters:
            if m not in first_due and book.clock_due(m, at, every, spread=True):
                first_due[m] = minute
    assert sorted(first_due) == list(meters)  # every clock read within the first hour
    per_minute = [list(first_due.values()).count(minute) for minute in range(61)]
    assert max(per_minute) <= 2 * len(meters) / 60  # about a sixtieth each minute, not all
    assert per_minute[0] < len(meters) / 10


class _SlowPoller:
    """Takes ``seconds`` a poll and notes the cycle tick each poll ran in."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ticks: list[tuple[int, float]] = []

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        self.ticks.append((target.meter_id, CYCLE_TICK.get()))
        await asyncio.sleep(self.seconds)
        return PollResult(values={"energy": 1.0}, measured_at=datetime.now(UTC))

    async def close(self) -> None:
        pass


async def test_an_overrunning_cycle_keeps_its_tick_for_its_late_polls(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 3)
    every = timedelta(seconds=1)
    targets = [PollTarget(m, "modbus", "tcp://127.0.0.1:9", {}, None, every) for m in meters]
    poller = _SlowPoller(0.45)  # three meters: 1.35 s, over the 1 s cycle
    book = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
    worker = LinkWorker(targets, poller=poller, sink=sink, book=book, options=ScheduleOptions())
    task = asyncio.create_task(worker.run())
    try:
        while len(poller.ticks) < 4:
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    polled, ticks = zip(*poller.ticks[:4], strict=True)
    assert list(polled) == [*meters, meters[0]]
    assert ticks[0] == ticks[1] == ticks[2]  # the late third poll: still the first cycle's
    assert ticks[3] >= ticks[0] + 2  # the overrun tick was skipped, not polled into
    assert worker.missed == 1


async def test_a_links_targets_come_by_meter_id_whatever_the_tables_order(
    db: asyncpg.Connection,
) -> None:
    from collectors.targets import load_targets

    meters = await create_meters(db, 3)
    url = "tcp://127.0.0.1:9"  # never polled: no collector runs in this test
    await _register(db, meters, url, [1, 2, 3])
    # Readdressed last, the first meter's row (and its index entries) now come after the
    # others'.
    await _register(db, meters[:1], url, [4])
    links = await load_targets(db, ["modbus"])
    mine = [t.meter_id for t in links[url] if t.meter_id in meters]  # others may share it
    assert mine == sorted(meters)

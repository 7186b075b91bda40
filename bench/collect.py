"""Collector benchmark: meters one collector process polls per minute, and MQTT ingest.

    .venv/bin/python bench/collect.py [--quick] [--json] [--modbus N] [--dlt645 N] [--cycles N]

Polling. The simulated meters run in other processes: `simulators.modbus_fleet` (Modbus TCP
gateway ports, ``--modbus-units`` unit ids behind each) and `simulators.dlt645_fleet` (TCP
transparent gateways, one RS-485 bus of 32 DL/T 645 meters each). Every meter is registered
with a 1-minute poll interval in a throwaway database, and this process runs the real
`Scheduler` (one `LinkWorker` per link on clock-aligned ticks) with the real pollers and a
real `IngestSink` until every link has finished ``--cycles`` cycles. Reported: meters polled
per minute (successful polls in those cycles / the minutes of schedule they took: the
cycles, unless one overran into a later tick), missed cycles (the scheduler's
counter, plus links still in their last cycle when the run gives up), each link's cycle time
from its tick until its readings were committed (p50 / max across links), CPU seconds and
peak RSS of this process (and the simulators' CPU), and a check that the database holds one
reading per successful poll. DL/T 645 buses keep the collector's default quiet gap of 50 ms
between frames (``--dlt645-gap-ms``); the simulated meters answer at once unless
``--dlt645-baud`` adds serial timing.

MQTT. One simulated gateway publishes a backlog of QoS 1 messages that the broker queues for
two persistent sessions: (a) a plain paho subscriber that only counts (paho acks on receipt)
drains its copy: the broker's own delivery rate; (b) `MqttIngestWorker` (defaults of
`meterhub ingest-mqtt`) drains the other into the database, acking each message once
committed: end to end. mqtt_ratio = (b) / (a).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import psutil  # type: ignore[import-untyped]
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import REGISTRY
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress, TaskID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from collectors.dlt645.bus import DEFAULT_GAP
from collectors.dlt645.poller import Dlt645Poller
from collectors.modbus import list_models, load_model
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.scheduler import ScheduleOptions, Scheduler, next_tick
from collectors.targets import Poller, PollResult, PollTarget
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.logs import configure_logging
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.runtime import tune_gc
from meterhub.settings import PROJECT_ROOT, Settings, get_settings
from simulators.dlt645_fleet import MAX_PER_BUS
from simulators.modbus_fleet import fleet_layout

console = Console(stderr=True)
INTERVAL = 60.0
PROTOCOLS = ("modbus", "dlt645")
GATEWAY = "mhbench-gw"
Row = tuple[dict[str, object], str | None]  # a meter's address and model


# -- simulators in processes of their own -------------------------------------------------------


@dataclass
class SimProcess:
    name: str
    proc: asyncio.subprocess.Process
    lines: list[str]  # what it printed before "ready"

    def cpu_seconds(self) -> float:
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return math.nan
        return float(times.user + times.system)


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(1 << 16):
        pass


@asynccontextmanager
async def sim_process(name: str, module: str, *args: str) -> AsyncIterator[SimProcess]:
    """``python -m module args`` once it printed ``ready``; stopped by closing its stdin."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        lines: list[str] = []
        async with asyncio.timeout(180):
            while (line := (await proc.stdout.readline()).decode().strip()) != "ready":
                if not line:
                    raise SystemExit(f"the {name} fleet exited before it was ready")
                lines.append(line)
        drain = asyncio.create_task(_discard(proc.stdout))  # a full pipe would block it
        yield SimProcess(name, proc, lines)
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if drain is not None:
            await drain


# -- CPU and memory ---------------------------------------------------------------------------


class Usage:
    """Between enter and exit: CPU seconds of this process and of ``sims``, how busy the
    whole machine was (every core, every process) and this process's peak RSS (sampled
    every 0.2 s). `lap` splits the CPU figures, e.g. at each tick."""

    def __init__(self, sims: Sequence[SimProcess] = ()) -> None:
        self._me = psutil.Process()
        self._sims = sims
        self.wall = 0.0
        self.laps: list[tuple[float, float]] = []  # (CPU s of this process, machine busy %)
        self.sims_cpu: dict[str, float] = {}
        self.peak_rss = 0
        self._mark = (0.0, 0.0, 0.0)
        self._t0 = 0.0

    @property
    def cpu(self) -> float:
        return sum(cpu for cpu, _ in self.laps)

    @property
    def machine_pct(self) -> float:
        return statistics.fmean(pct for _, pct in self.laps) if self.laps else math.nan

    def _now(self) -> tuple[float, float, float]:
        """CPU s of this process; busy and total CPU s of the machine (as psutil counts)."""
        me, machine = self._me.cpu_times(), psutil.cpu_times()
        total = sum(machine) - getattr(machine, "guest", 0) - getattr(machine, "guest_nice", 0)
        busy = total - machine.idle - getattr(machine, "iowait", 0)
        return float(me.user + me.system), float(busy), float(total)

    def lap(self) -> None:
        now = self._now()
        cpu, busy, total = (b - a for a, b in zip(self._mark, now, strict=True))
        self.laps.append((cpu, 100 * busy / total if total else math.nan))
        self._mark = now

    async def _sample(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, self._me.memory_info().rss)
            await asyncio.sleep(0.2)

    async def __aenter__(self) -> Usage:
        self._sims0 = [s.cpu_seconds() for s in self._sims]
        self._mark, self._t0 = self._now(), time.perf_counter()
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall = time.perf_counter() - self._t0
        self.lap()
        self._sampler.cancel()
        with suppress(asyncio.CancelledError):
            await self._sampler
        self.peak_rss = max(self.peak_rss, self._me.memory_info().rss)
        for sim, before in zip(self._sims, self._sims0, strict=True):
            self.sims_cpu[sim.name] = sim.cpu_seconds() - before

    def describe(self) -> str:
        sims = ", ".join(f"{name} fleet {cpu:.1f} s" for name, cpu in self.sims_cpu.items())
        laps = ""
        if len(self.laps) > 1:
            laps = " (from each tick: " + ", ".join(f"{cpu:.1f} s" for cpu, _ in self.laps) + ")"
        busy = ", ".join(f"{pct:.0f} %" for _, pct in self.laps)
        return (
            f"this process: CPU {self.cpu:.1f} s in {self.wall:.1f} s{laps}, peak RSS "
            f"{self.peak_rss / 2**20:.0f} MB; machine busy {busy} of {psutil.cpu_count()} cores"
            + (f"; simulators' CPU: {sims}" if sims else "")
        )


# -- the registry -------------------------------------------------------------------------------


async def register(dsn: str, *, protocol: str, rows: Sequence[Row]) -> None:
    """One meter of the bench firm per ``(address, model)`` row, polled every minute."""
    conn = await asyncpg.connect(dsn)
    try:
        firm = await conn.fetchval(
            "INSERT INTO firms (credit_code, name, industry, town) "
            "VALUES ('91350100M000100Y43', 'bench', 'C17', '苏溪') "
            "ON CONFLICT (credit_code) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        )
        await conn.execute(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, model, "
            "poll_interval, installed_at) SELECT $1, $2 || n, 'electricity', $2, a::jsonb, m, "
            "$3, '2025-01-01' FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS t(a, m, n)",
            firm,
            protocol,
            timedelta(seconds=INTERVAL),
            [orjson.dumps(address).decode() for address, _ in rows],
            [model for _, model in rows],
        )
    finally:
        await conn.close()


def modbus_rows(urls: list[str], *, units: int, count: int) -> list[Row]:
    """The first ``count`` meters `simulators.modbus_fleet` serves (its layout: the shipped
    models in turn)."""
    names = list_models()
    models = [load_model(name) for name in names]
    name_of = {id(model): name for model, name in zip(models, names, strict=True)}
    rows: list[Row] = []
    layout = fleet_layout(ports=len(urls), units=units, models=models)
    for url, meters in zip(urls, layout, strict=True):
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        for unit, model in meters.items():
            rows.append(({"host": host, "port": int(port), "unit_id": unit}, name_of[id(model)]))
    return rows[:count]


def dlt645_rows(lines: list[str], *, count: int, gap_ms: float | None) -> list[Row]:
    """The first ``count`` meters `simulators.dlt645_fleet` printed (``url address ...``)."""
    rows: list[Row] = []
    for line in lines:
        url, *addresses = line.split()
        bus = url if gap_ms is None else f"{url}?gap_ms={gap_ms:g}"
        rows += [({"address": address, "bus": bus}, None) for address in addresses]
    return rows[:count]


async def count_rows(dsn: str) -> tuple[dict[str, int], int]:
    """Readings stored per protocol, and quarantined records."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT m.protocol, count(*) AS n FROM readings r JOIN meters m ON m.id = r.meter_id "
            "GROUP BY m.protocol"
        )
        quarantined: int = await conn.fetchval("SELECT count(*) FROM quarantine")
    finally:
        await conn.close()
    return dict.fromkeys((*PROTOCOLS, "mqtt"), 0) | {
        r["protocol"]: r["n"] for r in rows
    }, quarantined


# -- watching the scheduler's cycles from outside ------------------------------------------------


def tick_of(started: float) -> float:
    """The tick a cycle that started at ``started`` (epoch seconds) belongs to."""
    return next_tick(started + 0.25 - INTERVAL, INTERVAL)


@dataclass(slots=True)
class LinkLog:
    """One link's cycles (epoch seconds): a cycle starts at its first poll attempt and ends
    when the sink has committed its readings (`LinkWorker.cycle` submits once per cycle)."""

    protocol: str
    started: float | None = None
    ticks: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    commits: list[float] = field(default_factory=list)
    readings: list[int] = field(default_factory=list)
    accepted: int = 0
    refused: int = 0


class CycleLog:
    def __init__(self) -> None:
        self.links: dict[str, LinkLog] = {}
        self.spooled = 0

    def poll_started(self, target: PollTarget) -> None:
        log = self.links.get(target.link)
        if log is None:
            log = self.links[target.link] = LinkLog(target.protocol)
        if log.started is None:
            log.started = time.time()

    def committed(self, link: str, readings: int, result: SubmitResult) -> None:
        now = time.time()
        log = self.links[link]
        started = now if log.started is None else log.started
        log.started = None
        log.ticks.append(tick_of(started))
        log.starts.append(started)
        log.commits.append(now)
        log.readings.append(readings)
        log.accepted += result.accepted
        log.refused += result.duplicates + result.conflicts + len(result.rejected)
        self.spooled += result.spooled

    def done(self, cycles: int) -> int:
        """Links that have finished ``cycles`` cycles."""
        return sum(len(log.commits) >= cycles for log in self.links.values())


class TimedPoller:
    """A real poller that notes when each link's cycle starts."""

    def __init__(self, inner: Poller, log: CycleLog) -> None:
        self._inner, self._log = inner, log

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        self._log.poll_started(target)
        return await self._inner.poll(target, read_clock=read_clock)

    async def close(self) -> None:
        await self._inner.close()


class TimedSink(IngestSink):
    """The real sink; notes when each link's readings of a cycle are committed."""

    def __init__(self, settings: Settings, *, log: CycleLog) -> None:
        super().__init__(settings)
        self._log = log

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        result = await super().submit(readings, rejects=rejects)
        source = readings[0].source if readings else rejects[0].source if rejects else ""
        if ":" in source:  # "<protocol>:<link>"
            self._log.committed(source.split(":", 1)[1], len(readings), result)
        return result


def polls_counted() -> dict[tuple[str, str], float]:
    """The scheduler's own counters, meterhub_collector_polls_total."""
    return {
        (protocol, outcome): REGISTRY.get_sample_value(
            "meterhub_collector_polls_total", {"protocol": protocol, "outcome": outcome}
        )
        or 0.0
        for protocol in PROTOCOLS
        for outcome in ("ok", "failed")
    }


# -- the polling phase ----------------------------------------------------------------------------


@dataclass
class PollFigures:
    meters: dict[str, int]
    links: dict[str, int]
    cycles: int
    ok: dict[str, int]  # the scheduler's poll counters, over every cycle it ran
    failed: dict[str, int]
    stored: dict[str, int]  # rows in `readings` afterwards
    quarantined: int
    missed_by_scheduler: int
    unfinished: int  # links still in their last measured cycle when the run gave up
    usage: Usage
    polled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROTOCOLS, 0))
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROTOCOLS, 0))
    refused: int = 0
    spooled: int = 0
    overran: int = 0  # measured cycles committed after the link's next tick (own count)
    start_lag: float = 0.0  # latest first poll of a cycle after its tick
    #: Seconds from tick to commit, per protocol, per measured cycle, one per link.
    durations: dict[str, list[list[float]]] = field(default_factory=dict)
    #: Per protocol: the first tick, and the last commit of a measured cycle (epoch s).
    span: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, log: CycleLog) -> None:
        """Take in what the benchmark saw of each link's first ``cycles`` cycles."""
        self.durations = {p: [[] for _ in range(self.cycles)] for p in PROTOCOLS}
        self.spooled = log.spooled
        for link in log.links.values():
            self.accepted[link.protocol] += link.accepted
            self.refused += link.refused
            for k in range(min(len(link.commits), self.cycles)):
                took = link.commits[k] - link.ticks[k]
                self.polled[link.protocol] += link.readings[k]
                self.durations[link.protocol][k].append(took)
                self.overran += took > INTERVAL
                self.start_lag = max(self.start_lag, link.starts[k] - link.ticks[k])
                first, last = self.span.get(link.protocol, (math.inf, -math.inf))
                first, last = min(first, link.ticks[k]), max(last, link.commits[k])
                self.span[link.protocol] = first, last

    @property
    def missed(self) -> int:
        return self.missed_by_scheduler + self.unfinished

    @property
    def verified(self) -> bool:
        return all(self.stored[p] == self.ok[p] == self.accepted[p] for p in PROTOCOLS)

    def minutes(self, protocol: str) -> float:
        """Minutes of schedule the measured cycles took: from the first tick to the tick
        after the last commit (``cycles`` unless a cycle overran)."""
        if protocol not in self.span:
            return float(self.cycles)
        first, last = self.span[protocol]
        return max(float(self.cycles), (next_tick(last, INTERVAL) - first) / 60)

    def per_min(self, protocol: str) -> float:
        return self.polled[protocol] / self.minutes(protocol)

    def every(self, protocol: str | None = None) -> list[float]:
        return [d for p in PROTOCOLS if protocol in (None, p) for c in self.durations[p] for d in c]


async def start_fleets(stack: AsyncExitStack, args: argparse.Namespace) -> list[SimProcess]:
    ports = math.ceil(args.modbus / args.modbus_units)
    buses = math.ceil(args.dlt645 / MAX_PER_BUS)
    sims: list[SimProcess] = []
    with console.status(f"starting {ports} Modbus gateways and {buses} DL/T 645 gateways"):
        if ports:
            fleet = sim_process(
                "modbus",
                "simulators.modbus_fleet",
                f"--ports={ports}",
                f"--units={args.modbus_units}",
            )
            sims.append(await stack.enter_async_context(fleet))
        if buses:
            fleet = sim_process(
                "dlt645",
                "simulators.dlt645_fleet",
                f"--gateways={buses}",
                f"--meters={MAX_PER_BUS}",
                f"--baud={args.dlt645_baud}",
            )
            sims.append(await stack.enter_async_context(fleet))
    return sims


async def watch(
    log: CycleLog,
    runner: asyncio.Task[None],
    usage: Usage,
    *,
    first: float,
    cycles: int,
    links: int,
) -> int:
    """Wait until every link has finished ``cycles`` cycles, or until it is clearly too late
    (a first tick one interval later still fits); returns how many links had not. Laps
    ``usage`` at each tick after the first."""
    deadline = first + (cycles + 1) * INTERVAL + 30
    with Progress(console=console, transient=True) as progress:
        bars = [
            progress.add_task(f"cycle {k}: links done", total=links) for k in range(1, cycles + 1)
        ]
        minute = first + INTERVAL
        while not runner.done() and time.time() < deadline and log.done(cycles) < links:
            for k, bar in enumerate(bars, start=1):
                progress.update(bar, completed=log.done(k))
            if time.time() >= minute:
                usage.lap()
                minute += INTERVAL
            await asyncio.sleep(0.1)
    return links - log.done(cycles)


async def wait_for_tick(first: float, runner: asyncio.Task[None]) -> None:
    with Progress(console=console, transient=True) as progress:
        label = f"waiting for the first tick, {datetime.fromtimestamp(first):%H:%M:%S}"
        bar = progress.add_task(label, total=max(first - time.time(), 0.1))
        began = time.time()
        while (left := first - time.time()) > 0.5 and not runner.done():
            progress.update(bar, completed=time.time() - began)
            await asyncio.sleep(min(0.5, left - 0.5))


async def polling_phase(settings: Settings, dsn: str, args: argparse.Namespace) -> PollFigures:
    log = CycleLog()
    pollers: dict[str, Poller] = {  # as `meterhub collect` builds them
        "modbus": TimedPoller(ModbusPoller(LinkOptions(timeout=args.timeout, retries=0)), log),
        "dlt645": TimedPoller(Dlt645Poller(timeout=args.timeout, retries=0), log),
    }
    async with AsyncExitStack() as stack:
        sims = await start_fleets(stack, args)
        mb = [s.lines for s in sims if s.name == "modbus"]
        dl = [s.lines for s in sims if s.name == "dlt645"]
        rows = modbus_rows(mb[0] if mb else [], units=args.modbus_units, count=args.modbus)
        drows = dlt645_rows(dl[0] if dl else [], count=args.dlt645, gap_ms=args.dlt645_gap_ms)
        await register(dsn, protocol="modbus", rows=rows)
        await register(dsn, protocol="dlt645", rows=drows)
        links = {"modbus": len(mb[0]) if mb else 0, "dlt645": len(dl[0]) if dl else 0}
        before = polls_counted()
        try:
            async with TimedSink(settings, log=log) as sink:
                options = ScheduleOptions(timeout=args.timeout)
                scheduler = Scheduler(
                    settings, sink=sink, pollers=pollers, options=options, name="bench"
                )
                # Loading the registry takes a moment: start well clear of a tick, so that
                # every link's first tick is the one expected.
                if (left := next_tick(time.time(), INTERVAL) - time.time()) < 5.0:
                    await asyncio.sleep(left + 0.5)
                first = next_tick(time.time(), INTERVAL)
                stop = asyncio.Event()
                runner = asyncio.create_task(scheduler.run(stop))
                try:
                    await wait_for_tick(first, runner)
                    async with Usage(sims) as usage:
                        unfinished = await watch(
                            log,
                            runner,
                            usage,
                            first=first,
                            cycles=args.cycles,
                            links=sum(links.values()),
                        )
                finally:
                    stop.set()
                    await runner
        finally:
            for poller in pollers.values():
                await poller.close()
    after = polls_counted()
    stored, quarantined = await count_rows(dsn)
    figures = PollFigures(
        meters={"modbus": len(rows), "dlt645": len(drows)},
        links=links,
        cycles=args.cycles,
        ok={p: round(after[p, "ok"] - before[p, "ok"]) for p in PROTOCOLS},
        failed={p: round(after[p, "failed"] - before[p, "failed"]) for p in PROTOCOLS},
        stored=stored,
        quarantined=quarantined,
        missed_by_scheduler=scheduler.missed_cycles,
        unfinished=unfinished,
        usage=usage,
    )
    figures.add(log)
    return figures


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"min {min(values):.1f} / p50 {statistics.median(values):.1f} / max {max(values):.1f} s"


def report_polling(f: PollFigures, args: argparse.Namespace) -> None:
    gap = DEFAULT_GAP * 1000 if args.dlt645_gap_ms is None else args.dlt645_gap_ms
    serial = f"{args.dlt645_baud} baud serial timing" if args.dlt645_baud else "answers at once"
    say = partial(console.print, highlight=False)
    say(
        f"[bold]polling[/] one collector process, 1-minute interval, {f.cycles} cycle(s): "
        f"{f.meters['modbus']:,} Modbus TCP meters behind {f.links['modbus']} gateway ports "
        f"({args.modbus_units} unit ids each); {f.meters['dlt645']:,} DL/T 645 meters on "
        f"{f.links['dlt645']} TCP gateways ({MAX_PER_BUS} per bus, {gap:g} ms between frames, "
        f"simulated meter {serial})"
    )
    for p in PROTOCOLS:
        say(
            f"  {p:7} {f.per_min(p):>9,.0f} meters/min   {f.polled[p]:,} polls in "
            f"{f.minutes(p):g} min; the scheduler counted {f.ok[p]:,} ok, {f.failed[p]:,} failed"
        )
    for k in range(f.cycles):
        spreads = "; ".join(f"{p} {_spread(f.durations[p][k])}" for p in PROTOCOLS)
        say(f"  cycle {k + 1}, tick to commit across links: {spreads}")
    say(
        f"  missed cycles {f.missed}   (scheduler's counter {f.missed_by_scheduler}, unfinished "
        f"{f.unfinished}; cross-check: {f.overran} committed after the next tick); latest "
        f"first poll {f.start_lag:.2f} s after its tick"
    )
    stored = sum(f.stored[p] for p in PROTOCOLS)
    mark = "[green]=[/]" if f.verified else "[red]!=[/]"
    say(
        f"  database: {stored:,} readings {mark} {sum(f.ok.values()):,} successful polls "
        f"({f.refused} not accepted, {f.quarantined} quarantined, {f.spooled} spooled)"
    )
    minutes = max(f.minutes(p) for p in PROTOCOLS)
    say(
        f"  {f.usage.describe()}; collector CPU = {100 * f.usage.cpu / (minutes * 60):.1f} % of "
        f"one core over {minutes:g} min of schedule"
    )


# -- the MQTT phase -------------------------------------------------------------------------------


class PlainSubscriber:
    """A bare paho client (MQTT 5, QoS 1, paho acks each message as it arrives) that only
    counts: what the broker delivers when nothing downstream holds it back."""

    def __init__(self, url: str, *, client_id: str, topic: str, receive_maximum: int) -> None:
        from collectors.mqtt.broker import BrokerAddress

        self._broker = BrokerAddress.from_url(url)
        self._client_id, self._topic, self._receive_maximum = client_id, topic, receive_maximum
        self.received = self._expected = 0
        self._done_at = 0.0
        self._done, self._connected, self._subscribed = (threading.Event() for _ in range(3))
        self._failure = ""

    async def _connect(self, *, clean_start: bool, expiry: int) -> Any:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        props.ReceiveMaximum = self._receive_maximum
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(self._broker.username, self._broker.password)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        self._connected.clear()
        host, port = self._broker.host, self._broker.port
        client.connect_async(host, port, keepalive=30, clean_start=clean_start, properties=props)
        client.loop_start()
        if not await asyncio.to_thread(self._connected.wait, 30) or self._failure:
            await self._disconnect(client)
            raise SystemExit(f"plain subscriber could not connect: {self._failure or 'timeout'}")
        return client

    @staticmethod
    async def _disconnect(client: Any) -> None:
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._failure = str(rc) if rc.is_failure else ""
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, _m: Any) -> None:
        self.received += 1
        if self.received == self._expected:
            self._done_at = time.perf_counter()
            self._done.set()

    async def open_session(self) -> None:
        """Subscribe and leave: the broker queues what is published from now on."""
        client = await self._connect(clean_start=True, expiry=600)
        self._subscribed.clear()
        client.subscribe(self._topic, qos=1)
        subscribed = await asyncio.to_thread(self._subscribed.wait, 30)
        await self._disconnect(client)
        if not subscribed:
            raise SystemExit("plain subscriber: no SUBACK")

    async def drain(self, expected: int, *, timeout: float) -> float:
        """Reconnect and take ``expected`` queued messages; messages/s from the connect."""
        self.received, self._expected = 0, expected
        self._done.clear()
        started = time.perf_counter()
        client = await self._connect(clean_start=False, expiry=600)
        try:
            if not await asyncio.to_thread(self._done.wait, timeout):
                raise SystemExit(f"plain subscriber got {self.received} of {expected} messages")
        finally:
            await self._disconnect(client)
        return expected / (self._done_at - started)

    async def end_session(self) -> None:
        await self._disconnect(await self._connect(clean_start=True, expiry=0))


@dataclass
class MqttFigures:
    messages: int
    channels: int
    publish_rate: float
    broker_rate: float
    ingest_rate: float
    broker_usage: Usage
    ingest_usage: Usage
    stored: int = 0

    @property
    def ratio(self) -> float:
        return self.ingest_rate / self.broker_rate

    @property
    def verified(self) -> bool:
        return self.stored == self.messages * self.channels


async def follow(
    progress: Progress, bar: TaskID, count: Callable[[], int], until: asyncio.Future[Any]
) -> Any:
    while not until.done():
        progress.update(bar, completed=count())
        await asyncio.sleep(0.2)
    return await until


async def publish_backlog(broker: str, *, messages: int, channels: int) -> float:
    """Publish ``messages`` (one minute of every channel each, ending an hour ago) as the
    bench gateway, creating its broker user on first use; returns messages/s."""
    from collectors.mqtt.errors import BrokerRefusedError
    from simulators.mqtt_gateway import MqttGatewaySimulator

    password = f"pw-{GATEWAY}"
    gateway = partial(
        MqttGatewaySimulator,
        broker,
        GATEWAY,
        password,
        channels=range(1, channels + 1),
        interval=timedelta(minutes=1),
        max_inflight=500,
    )
    publisher = gateway()
    try:
        await publisher.connect()
    except BrokerRefusedError:  # first run against this broker
        services = str(PROJECT_ROOT / "deploy" / "services.sh")
        command = ["bash", services, "mqtt-user", GATEWAY, password]
        await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
        publisher = gateway()
        await publisher.connect()
    start = datetime.now(LOCAL_TZ).replace(second=0, microsecond=0)
    start -= timedelta(minutes=messages + 60)
    with console.status(f"publishing {messages:,} messages"):
        began = time.perf_counter()
        try:
            await publisher.publish_stream(start, messages=messages)
        finally:
            await publisher.close()
        return messages / (time.perf_counter() - began)


async def mqtt_phase(settings: Settings, dsn: str, args: argparse.Namespace) -> MqttFigures | None:
    try:
        from collectors.mqtt.broker import BrokerAddress
        from collectors.mqtt.topics import readings_topic
        from collectors.mqtt.worker import MqttIngestWorker
    except ImportError as exc:
        console.print(f"[yellow]MQTT phase skipped: the MQTT worker does not import ({exc})")
        return None
    messages, channels = args.mqtt_messages, args.mqtt_channels
    tune_gc()  # as `meterhub ingest-mqtt` does at start-up (both consumers run after it)
    rows: list[Row] = [
        ({"gateway_id": GATEWAY, "channel": c}, None) for c in range(1, channels + 1)
    ]
    await register(dsn, protocol="mqtt", rows=rows)
    run = uuid.uuid4().hex[:8]
    plain = PlainSubscriber(
        settings.mqtt(),
        client_id=f"mhbench-plain-{run}",
        topic=readings_topic(GATEWAY),
        receive_maximum=10_000,  # the worker's default window: the same for both
    )
    worker = partial(
        MqttIngestWorker,
        settings,
        group=f"mhbench{run}",
        client_id=f"mhbench-worker-{run}",
        gateways=GATEWAY,
        session_expiry=600,
    )
    broker = BrokerAddress.from_url(settings.mqtt())
    timeout = 120 + messages / 50
    await plain.open_session()
    async with IngestSink(settings) as sink:
        async with worker(sink):
            pass  # the worker's session and subscription exist: the broker queues for both
        rate = await publish_backlog(
            f"mqtt://{broker.host}:{broker.port}", messages=messages, channels=channels
        )
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("(a) plain subscriber", total=messages)
            async with Usage() as broker_usage:
                drained = asyncio.ensure_future(plain.drain(messages, timeout=timeout))
                broker_rate = await follow(progress, bar, lambda: plain.received, drained)
            bar = progress.add_task("(b) MqttIngestWorker -> database", total=messages)
            async with Usage() as ingest_usage:
                began = time.perf_counter()
                ingest = worker(sink, end_session=True)
                await ingest.start()
                try:
                    acked = ingest.wait_until(lambda s: s.acked >= messages, timeout=timeout)
                    done = asyncio.ensure_future(acked)
                    await follow(progress, bar, lambda: ingest.stats.acked, done)
                    ingest_rate = messages / (time.perf_counter() - began)
                finally:
                    await ingest.close()
    await plain.end_session()
    figures = MqttFigures(
        messages, channels, rate, broker_rate, ingest_rate, broker_usage, ingest_usage
    )
    figures.stored = (await count_rows(dsn))[0]["mqtt"]
    return figures


def report_mqtt(f: MqttFigures) -> None:
    say = partial(console.print, highlight=False)
    say(
        f"[bold]mqtt[/] {f.messages:,} QoS 1 messages of {f.channels} readings, queued by the "
        f"broker for both consumers (published at {f.publish_rate:,.0f} msg/s)"
    )
    say(f"  (a) broker -> plain paho subscriber {f.broker_rate:>9,.0f} msg/s")
    say(f"      {f.broker_usage.describe()}")
    mark = "all stored" if f.verified else "[red]NOT all stored[/]"
    say(
        f"  (b) broker -> worker -> database    {f.ingest_rate:>9,.0f} msg/s = "
        f"{f.ingest_rate * f.channels:,.0f} readings/s ({f.stored:,} readings: {mark})"
    )
    say(f"      {f.ingest_usage.describe()}")
    say(f"  mqtt_ratio (b)/(a) = {f.ratio:.3f}")


# -- main -----------------------------------------------------------------------------------------


def summary(polls: PollFigures | None, mq: MqttFigures | None) -> dict[str, object]:
    """The JSON line: the four headline figures first, then the detail behind them."""
    out: dict[str, object] = {}
    if polls is not None:
        out |= {f"{p}_meters_per_min": round(polls.per_min(p)) for p in PROTOCOLS}
        out["missed_cycles"] = polls.missed
    out["mqtt_ratio"] = None if mq is None else round(mq.ratio, 3)
    if polls is not None:
        out |= {f"{p}_meters": polls.meters[p] for p in PROTOCOLS}
        out |= {"cycles": polls.cycles, "failed_polls": sum(polls.failed.values())}
        for p in (*PROTOCOLS, None):
            took, name = polls.every(p), f"{p}_cycle" if p else "cycle"
            out[f"{name}_p50_s"] = round(statistics.median(took), 2) if took else None
            out[f"{name}_max_s"] = round(max(took), 2) if took else None
        out |= {
            "collector_cpu_s": round(polls.usage.cpu, 1),
            "collector_peak_rss_mb": round(polls.usage.peak_rss / 2**20, 1),
            "readings_match_polls": polls.verified,
        }
    if mq is not None:
        out |= {
            "mqtt_broker_msgs_per_s": round(mq.broker_rate),
            "mqtt_ingest_msgs_per_s": round(mq.ingest_rate),
            "mqtt_all_stored": mq.verified,
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    base = get_settings().model_copy(update={"log_level": "WARNING"})
    configure_logging(base)
    polls = mq = None
    # A safety net only: each phase bounds its own waits.
    budget = 300 + args.mqtt_messages / 100 + (args.cycles + 2) * INTERVAL
    try:
        async with (
            asyncio.timeout(budget) as limit,
            bench_database(base, "meterhub_bench_collect") as dsn,
        ):
            with tempfile.TemporaryDirectory() as tmp:
                settings = base.model_copy(
                    update={"database_url": SecretStr(dsn), "spool_dir": Path(tmp) / "spool"}
                )
                if not args.skip_mqtt and (mq := await mqtt_phase(settings, dsn, args)):
                    report_mqtt(mq)
                if not args.skip_polling:
                    polls = await polling_phase(settings, dsn, args)
                    report_polling(polls, args)
    except TimeoutError:
        if not limit.expired():
            raise
        raise SystemExit(f"the benchmark did not finish within {budget:.0f} s") from None
    return summary(polls, mq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a small run (25-85 s: it waits for a tick)"
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--modbus", type=int, default=20_000, help="Modbus TCP meters")
    parser.add_argument("--modbus-units", type=int, default=32, help="meters per gateway port")
    parser.add_argument("--dlt645", type=int, default=10_000, help="DL/T 645 meters")
    parser.add_argument("--dlt645-gap-ms", type=float, help="quiet gap between frames (50)")
    parser.add_argument("--dlt645-baud", type=int, default=0, help="serial timing (0: none)")
    parser.add_argument("--cycles", type=int, default=2, help="1-minute cycles measured")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    parser.add_argument("--mqtt-messages", type=int, default=100_000)
    parser.add_argument("--mqtt-channels", type=int, default=8, help="readings per message")
    parser.add_argument("--skip-mqtt", action="store_true")
    parser.add_argument("--skip-polling", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.modbus, args.dlt645, args.cycles, args.mqtt_messages = 1_000, 320, 1, 2_000
    if min(args.modbus, args.dlt645) < 0 or min(args.cycles, args.mqtt_messages) < 1:
        parser.error("meter counts must be >= 0, cycles and MQTT messages >= 1")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    if result.get("readings_match_polls") is False or result.get("mqtt_all_stored") is False:
        sys.exit(1)


if __name__ == "__main__":
    main()

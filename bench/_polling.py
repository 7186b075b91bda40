"""The collector benchmark's polling phase: the real scheduler, pollers and sink polling
the simulated fleets every minute, and its figures and report."""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from rich.progress import Progress

from bench._cycles import CycleLog, TimedPoller, TimedSink, polls_counted
from bench._line import dlt645_frames, dlt645_poll_time, line_limited, modbus_poll_time
from bench._pinning import CpuPlan, pinned, plan
from bench._processes import SimProcess, Usage, sim_process
from bench._registry import (
    INTERVAL,
    PROTOCOLS,
    Row,
    console,
    count_rows,
    dlt645_rows,
    modbus_rows,
    register,
)
from collectors.dlt645.bus import DEFAULT_GAP
from collectors.dlt645.poller import Dlt645Poller
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.scheduler import ScheduleOptions, Scheduler, next_tick
from collectors.targets import Poller
from meterhub.runtime import tune_gc
from meterhub.settings import Settings
from simulators.line_speed import dlt645_line, modbus_rtu


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
    cpus: CpuPlan
    polled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROTOCOLS, 0))
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROTOCOLS, 0))
    refused: int = 0
    spooled: int = 0
    overran: int = 0  # measured cycles committed after the link's next tick (own count)
    #: Links with a measured cycle that polled fewer meters than the link has or committed
    #: after the next tick (an overrunning cycle's readings fall into two ticks: one link,
    #: not two; a cycle still running when the run stops is not in the scheduler's count).
    late: int = 0
    start_lag: float = 0.0  # latest first poll of a cycle after its tick
    #: Seconds from tick to commit, per protocol, per measured cycle, one per link.
    durations: dict[str, list[list[float]]] = field(default_factory=dict)
    #: Per protocol: the first tick, and the last commit of a measured cycle (epoch s).
    span: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Seconds per meter on its bus (tick to commit / meters on the link), like durations.
    per_meter: dict[str, list[list[float]]] = field(default_factory=dict)
    #: Seconds one poll keeps its bus busy at line speed (0: the meters answer at once).
    line_time: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROTOCOLS, 0.0))
    clock_share: float = 0.0  # DL/T 645 polls that read the clock too, in the last cycle

    def add(self, log: CycleLog) -> None:
        """Take in what the benchmark saw of each link's first ``cycles`` cycles."""
        self.durations = {p: [[] for _ in range(self.cycles)] for p in PROTOCOLS}
        self.per_meter = {p: [[] for _ in range(self.cycles)] for p in PROTOCOLS}
        self.spooled = log.spooled
        self.refused = log.refused
        for link in log.links.values():
            self.accepted[link.protocol] += link.accepted
            measured = link.finished()[: self.cycles]
            self.late += any(
                c.readings < link.meters or (c.committed or 0) - t > INTERVAL for t, c in measured
            )
            for k, (tick, cycle) in enumerate(link.finished()[: self.cycles]):
                assert cycle.committed is not None
                took = cycle.committed - tick
                self.polled[link.protocol] += cycle.readings
                self.durations[link.protocol][k].append(took)
                self.per_meter[link.protocol][k].append(took / max(link.meters, 1))
                self.overran += took > INTERVAL
                self.start_lag = max(self.start_lag, cycle.started - tick)
                first, last = self.span.get(link.protocol, (math.inf, -math.inf))
                first, last = min(first, tick), max(last, cycle.committed)
                self.span[link.protocol] = first, last

    @property
    def missed(self) -> int:
        """Link cycles lost: the scheduler's count, or the benchmark's own (cycles short of
        meters or late) when higher, plus links that never finished their last cycle."""
        return max(self.missed_by_scheduler, self.late) + self.unfinished

    @property
    def held(self) -> bool:
        """Every meter polled in every measured cycle, none late, none failed."""
        every = all(self.polled[p] == self.meters[p] * self.cycles for p in PROTOCOLS)
        return every and self.missed == 0 and not any(self.failed.values()) and self.verified

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

    def meter_time(self, protocol: str) -> float | None:
        """Median seconds per meter on its bus in the last measured cycle (the first also
        opens the connections)."""
        last = self.per_meter.get(protocol, [[]])[-1]
        return statistics.median(last) if last else None

    def line_limited(self, protocol: str) -> float | None:
        """Meters per minute these links would carry at line speed if always busy."""
        per = self.line_time[protocol]
        return line_limited(self.links[protocol], per) if per else None

    def wire_ratio(self, protocol: str) -> float | None:
        """The wire's time per meter / the collector's (1.0: the collector keeps up with
        the wire, as if it took no time of its own)."""
        took, per = self.meter_time(protocol), self.line_time[protocol]
        return per / took if took and per else None


async def start_fleets(stack: AsyncExitStack, args: argparse.Namespace) -> list[SimProcess]:
    ports = math.ceil(args.modbus / args.modbus_units)
    buses = math.ceil(args.dlt645 / args.dlt645_per_bus)
    sims: list[SimProcess] = []
    with console.status(f"starting {ports} Modbus gateways and {buses} DL/T 645 gateways"):
        if ports:
            fleet = sim_process(
                "modbus",
                "simulators.modbus_fleet",
                f"--ports={ports}",
                f"--units={args.modbus_units}",
                f"--baud={args.modbus_baud}",
            )
            sims.append(await stack.enter_async_context(fleet))
        if buses:
            fleet = sim_process(
                "dlt645",
                "simulators.dlt645_fleet",
                f"--gateways={buses}",
                f"--meters={args.dlt645_per_bus}",
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
        # Looked at once a second: this runs in the collector's process, and going over
        # thousands of links costs it CPU the collector itself would not spend.
        while not runner.done() and time.time() < deadline:
            done = log.done_by_cycle(cycles)
            for bar, count in zip(bars, done, strict=True):
                progress.update(bar, completed=count)
            if done[-1] >= links:
                break
            if time.time() >= minute:
                usage.lap()
                minute += INTERVAL
            await asyncio.sleep(1.0)
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
    cpus = plan(args.cpus)
    async with AsyncExitStack() as stack:
        with pinned(cpus.load):  # the fleets stand for the meters in the field
            sims = await start_fleets(stack, args)
        stack.enter_context(pinned(cpus.measured))
        mb = [s.lines for s in sims if s.name == "modbus"]
        dl = [s.lines for s in sims if s.name == "dlt645"]
        rows = modbus_rows(mb[0] if mb else [], units=args.modbus_units, count=args.modbus)
        drows = dlt645_rows(dl[0] if dl else [], count=args.dlt645, gap_ms=args.dlt645_gap_ms)
        await register(dsn, protocol="modbus", rows=rows)
        await register(dsn, protocol="dlt645", rows=drows)
        log.expect("modbus", rows)
        log.expect("dlt645", drows)
        links = {"modbus": len(mb[0]) if mb else 0, "dlt645": len(dl[0]) if dl else 0}
        before = polls_counted()
        try:
            async with TimedSink(settings, log=log) as sink:
                # As `meterhub collect` runs: clock reads spread, the start-up heap frozen.
                options = ScheduleOptions(timeout=args.timeout, clock_spread=args.clock_spread)
                tune_gc()
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
        cpus=cpus,
    )
    figures.add(log)
    share = log.clock_share("dlt645", first + (args.cycles - 1) * INTERVAL)
    figures.clock_share = share
    figures.line_time = line_times(args, rows, clock_share=share)
    return figures


def dlt645_gap(args: argparse.Namespace) -> float:
    """The collector's quiet gap between frames on a DL/T 645 bus (s)."""
    return DEFAULT_GAP if args.dlt645_gap_ms is None else args.dlt645_gap_ms / 1000


def line_times(
    args: argparse.Namespace, modbus: list[Row], *, clock_share: float
) -> dict[str, float]:
    """Seconds a poll keeps its bus busy at the simulated line speed (0: no line speed);
    for DL/T 645 with the clock reads of ``clock_share`` of the polls."""
    out = dict.fromkeys(PROTOCOLS, 0.0)
    if args.dlt645_baud:
        line = dlt645_line(args.dlt645_baud)
        out["dlt645"] = dlt645_poll_time(line, clock_share=clock_share)
    if args.modbus_baud:
        out["modbus"] = modbus_poll_time(modbus_rtu(args.modbus_baud), modbus)
    return out


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"min {min(values):.1f} / p50 {statistics.median(values):.1f} / max {max(values):.1f} s"


def _speed(baud: int, what: str) -> str:
    return f"{what} at {baud} baud (8E1)" if baud else "answering at once"


def report_polling(f: PollFigures, args: argparse.Namespace) -> None:
    gap = dlt645_gap(args) * 1000
    say = partial(console.print, highlight=False)
    say(
        f"[bold]polling[/] one collector process, 1-minute interval, {f.cycles} cycle(s): "
        f"{f.meters['modbus']:,} Modbus TCP meters behind {f.links['modbus']} gateway ports "
        f"({args.modbus_units} unit ids each, {_speed(args.modbus_baud, 'RS-485 bus')}); "
        f"{f.meters['dlt645']:,} DL/T 645 meters on {f.links['dlt645']} TCP gateways "
        f"({args.dlt645_per_bus} per bus, {_speed(args.dlt645_baud, 'RS-485')}, the collector "
        f"keeping {gap:g} ms between frames)"
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
        f"  missed cycles {f.missed}   (scheduler's counter {f.missed_by_scheduler}; links with "
        f"a measured cycle short of their meters or committed after the next tick {f.late}; "
        f"cycles committed after the next tick {f.overran}; unfinished {f.unfinished}); latest "
        f"first poll "
        f"{f.start_lag:.2f} s after its tick"
    )
    stored = sum(f.stored[p] for p in PROTOCOLS)
    mark = "[green]=[/]" if f.verified else "[red]!=[/]"
    say(
        f"  database: {stored:,} readings {mark} {sum(f.ok.values()):,} successful polls "
        f"({f.refused} not accepted, {f.quarantined} quarantined, {f.spooled} spooled)"
    )
    minutes = max(f.minutes(p) for p in PROTOCOLS)
    say(f"  CPUs: {f.cpus.describe('collector (this process)', 'simulated fleets')}")
    say(
        f"  {f.usage.describe()}; collector CPU = {100 * f.usage.cpu / (minutes * 60):.1f} % of "
        f"one core over {minutes:g} min of schedule"
    )
    report_line(f, args)


def report_line(f: PollFigures, args: argparse.Namespace) -> None:
    """The wire's limit beside what the collector did on the same buses."""
    say = partial(console.print, highlight=False)
    exchanges = len(dlt645_frames()) + f.clock_share * len(dlt645_frames(clock=True))
    gaps = exchanges * dlt645_gap(args)
    notes = {
        "dlt645": f" ({100 * f.clock_share:.0f} % of polls with the clock; +{gaps:.2f} s of "
        "the collector's quiet gaps)",
        "modbus": "",
    }
    for p in PROTOCOLS:
        limit, took, ratio = f.line_limited(p), f.meter_time(p), f.wire_ratio(p)
        if limit is None or took is None or ratio is None:
            continue
        say(
            f"  {p:7} line-limited capacity {limit:>9,.0f} meters/min: {f.links[p]} buses x "
            f"60 s / {f.line_time[p]:.3f} s a poll keeps its bus busy on the wire{notes[p]}; "
            f"the collector took p50 {took:.3f} s per meter in cycle {f.cycles}: "
            f"{ratio:.2f} x the wire"
            + (
                f", {(f.line_time[p] + gaps) / took:.2f} x the wire with those gaps"
                if p == "dlt645"
                else ""
            )
        )

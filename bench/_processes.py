"""The collector benchmark's simulator fleets in processes of their own, and the CPU and
memory this process and those fleets use."""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType

import psutil  # type: ignore[import-untyped]

from bench._soak_figures import percentile
from simulators.fleet_process import FleetExitedError, fleet_process

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


@asynccontextmanager
async def sim_process(name: str, module: str, *args: str) -> AsyncIterator[SimProcess]:
    """``python -m module args`` once it printed ``ready``; stopped by closing its stdin."""
    try:
        async with fleet_process(module, *args) as fleet:
            yield SimProcess(name, fleet.proc, fleet.lines)
    except FleetExitedError as exc:
        raise SystemExit(f"the {name} fleet exited before it was ready") from exc


# -- CPU and memory ---------------------------------------------------------------------------

_SAMPLE_EVERY = 0.2  # s


class Usage:
    """Between enter and exit: CPU seconds of this process and of ``sims``, how busy the
    whole machine was (every core, every process), this process's peak RSS and how late its
    event loop runs a 0.2 s timer (its lag: the wait of every callback ready with it).
    `lap` splits the CPU and lag figures, e.g. at each tick."""

    def __init__(self, sims: Sequence[SimProcess] = ()) -> None:
        self._me = psutil.Process()
        self._sims = sims
        self.wall = 0.0
        self.laps: list[tuple[float, float]] = []  # (CPU s of this process, machine busy %)
        self.sims_cpu: dict[str, float] = {}
        self.peak_rss = 0
        self.lags: list[list[float]] = [[]]  # seconds late, per lap
        self.full_gcs: list[list[float]] = [[]]  # seconds of each full collection, per lap
        self.gc_seconds: list[list[float]] = [[0.0, 0.0, 0.0]]  # per lap, per generation
        self._gc_started = 0.0
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
        self.lags.append([])
        self.full_gcs.append([])
        self.gc_seconds.append([0.0, 0.0, 0.0])
        self._mark = now

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        self.gc_seconds[-1][info["generation"]] += took
        if info["generation"] == 2:
            self.full_gcs[-1].append(took)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.peak_rss = max(self.peak_rss, self._me.memory_info().rss)
            asked = loop.time() + _SAMPLE_EVERY
            await asyncio.sleep(_SAMPLE_EVERY)
            self.lags[-1].append(max(0.0, loop.time() - asked))

    def lag_figures(self) -> list[tuple[float, float, float]]:
        """Event-loop lag (s) per lap: p50, p99, max."""
        return [
            (percentile(lags, 0.5, digits=None), percentile(lags, 0.99, digits=None), max(lags))
            for lags in self.lags[: len(self.laps)]
            if lags
        ]

    async def __aenter__(self) -> Usage:
        self._sims0 = [s.cpu_seconds() for s in self._sims]
        self._mark, self._t0 = self._now(), time.perf_counter()
        self._sampler = asyncio.create_task(self._sample())
        gc.callbacks.append(self._on_gc)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall = time.perf_counter() - self._t0
        self.lap()
        gc.callbacks.remove(self._on_gc)
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
        lag = ", ".join(f"{a:.3f} / {b:.3f} / {c:.3f}" for a, b, c in self.lag_figures())
        gcs = ", ".join(
            f"{len(pauses)} ({max(pauses, default=0) * 1000:.0f} ms)"
            for pauses in self.full_gcs[: len(self.laps)]
        )
        gc_time = ", ".join(
            " + ".join(f"{t:.1f}" for t in gens) for gens in self.gc_seconds[: len(self.laps)]
        )
        return (
            f"this process: CPU {self.cpu:.1f} s in {self.wall:.1f} s{laps}, peak RSS "
            f"{self.peak_rss / 2**20:.0f} MB; event-loop lag p50 / p99 / max {lag} s; full GCs "
            f"(longest) {gcs}; GC s by generation 0 + 1 + 2 {gc_time}; machine "
            f"busy {busy} of {psutil.cpu_count()} cores"
            + (f"; simulators' CPU: {sims}" if sims else "")
        )

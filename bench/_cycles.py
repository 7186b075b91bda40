"""Watching the scheduler's cycles from outside: when each link's cycle starts (the first
poll attempt) and when the last of its readings is committed, and the scheduler's own poll
counters. A poll belongs to the cycle the scheduler is running (`CYCLE_TICK`), so the late
polls of an overrunning cycle stay in it instead of counting as the next one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY

from bench._registry import INTERVAL, PROTOCOLS, Row
from collectors.scheduler import CYCLE_TICK, next_tick
from collectors.targets import Poller, PollResult, PollTarget, link_of
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.reading import Reading
from meterhub.settings import Settings


def tick_of(started: float) -> float:
    """The tick a cycle that started at ``started`` (epoch seconds) belongs to."""
    return next_tick(started + 0.25 - INTERVAL, INTERVAL)


@dataclass(slots=True)
class Cycle:
    """One cycle of a link (epoch seconds): its first poll attempt, its readings committed
    so far (each meter's reading is handed to the sink as soon as it is read, in batches
    shared by links) and when the latest of them was."""

    started: float
    readings: int = 0
    committed: float | None = None


@dataclass(slots=True)
class LinkLog:
    """One link's cycles by tick. A cycle is finished when every meter of the link has a
    reading committed in it, or when the link has started a later cycle."""

    protocol: str
    meters: int = 0
    cycles: dict[float, Cycle] = field(default_factory=dict)
    accepted: int = 0

    def finished(self) -> list[tuple[float, Cycle]]:
        """The finished cycles, by tick."""
        ticks = sorted(self.cycles)
        return [
            (tick, cycle)
            for n, tick in enumerate(ticks)
            if (cycle := self.cycles[tick]).committed is not None
            and (cycle.readings >= self.meters > 0 or n + 1 < len(ticks))
        ]


class CycleLog:
    def __init__(self) -> None:
        self.links: dict[str, LinkLog] = {}
        self.spooled = 0
        self.refused = 0
        #: Poll attempts per protocol and tick: [attempts, those that read the clock too].
        self.attempts: dict[tuple[str, float], list[int]] = {}
        #: The tick of each meter's latest poll: its reading's cycle when it is committed.
        self._polled_in: dict[int, float] = {}

    def expect(self, protocol: str, rows: Sequence[Row]) -> None:
        """The meters registered on each link of ``protocol``."""
        for address, _ in rows:
            self._link(protocol, link_of(protocol, address)).meters += 1

    def _link(self, protocol: str, link: str) -> LinkLog:
        log = self.links.get(link)
        if log is None:
            log = self.links[link] = LinkLog(protocol)
        return log

    def poll_started(self, target: PollTarget, *, read_clock: bool = False) -> None:
        now = time.time()
        tick = CYCLE_TICK.get(None)
        tick = tick_of(now) if tick is None else tick
        self._polled_in[target.meter_id] = tick
        counts = self.attempts.setdefault((target.protocol, tick), [0, 0])
        counts[0] += 1
        counts[1] += read_clock
        self._link(target.protocol, target.link).cycles.setdefault(tick, Cycle(now))

    def committed(self, readings: Sequence[Reading], result: SubmitResult) -> None:
        """A batch is durable: each reading counts in the cycle that polled its meter (a
        link's next cycle starts only once its readings are durable)."""
        now = time.time()
        rejected = {r.index for r in result.rejected}
        for i, reading in enumerate(readings):
            protocol, link = reading.source.split(":", 1)
            log = self._link(protocol, link)
            cycle = log.cycles[self._polled_in[reading.meter_id]]  # made by poll_started
            cycle.readings += 1
            cycle.committed = now
            log.accepted += not result.spooled and i not in rejected
        self.refused += result.duplicates + result.conflicts + len(rejected)
        self.spooled += result.spooled

    def clock_share(self, protocol: str, tick: float) -> float:
        """The share of ``protocol``'s poll attempts at ``tick`` that read the clock too."""
        attempts, clock = self.attempts.get((protocol, tick), (0, 0))
        return clock / attempts if attempts else 0.0

    def done(self, cycles: int) -> int:
        """Links that have finished ``cycles`` cycles."""
        return self.done_by_cycle(cycles)[-1]

    def done_by_cycle(self, cycles: int) -> list[int]:
        """Links that have finished 1, 2 ... ``cycles`` cycles."""
        counts = [0] * cycles
        for log in self.links.values():
            for k in range(min(len(log.finished()), cycles)):
                counts[k] += 1
        return counts


class TimedPoller:
    """A real poller that notes when each link's cycle starts."""

    def __init__(self, inner: Poller, log: CycleLog) -> None:
        self._inner, self._log = inner, log

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        self._log.poll_started(target, read_clock=read_clock)
        return await self._inner.poll(target, read_clock=read_clock)

    async def close(self) -> None:
        await self._inner.close()


class TimedSink(IngestSink):
    """The real sink; notes when the readings of each link's cycles are committed."""

    def __init__(self, settings: Settings, *, log: CycleLog) -> None:
        super().__init__(settings)
        self._log = log

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        result = await super().submit(readings, rejects=rejects)
        self._log.committed(readings, result)  # sources "<protocol>:<link>"
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

"""Watching the scheduler's cycles from outside: when each link's cycle starts (the first
poll attempt) and when its readings are committed, and the scheduler's own poll counters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY

from bench._registry import INTERVAL, PROTOCOLS
from collectors.scheduler import next_tick
from collectors.targets import Poller, PollResult, PollTarget
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.reading import Reading
from meterhub.settings import Settings


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

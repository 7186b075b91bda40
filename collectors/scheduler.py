"""`meterhub collect`: polls every registered terminal on its clock-aligned cycle.

One task per link (a Modbus endpoint or an RS-485 bus) polls the meters due at each tick
one at a time; thousands of links run concurrently. Each meter's reading goes to the sink as
soon as it is read, in batches shared by all links and bounded by time (`Handoff`); a
link's cycle ends when all of its readings are durable. A failed poll is retried with backoff;
after ``offline_after`` consecutive failures the terminal is offline (an event). Meter
clocks are read every ``clock_every`` (with ``clock_spread``, as `meterhub collect` runs, the
first reads spread over the first ``clock_every`` rather than all in one cycle) and drift
beyond the tolerance is flagged. The
registry is reloaded every ``reload_every`` without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from prometheus_client import Counter, Histogram

from collectors.errors import CollectorError
from collectors.handoff import DEFAULT_DELAY, DEFAULT_SIZE, Handoff
from collectors.networks import DialPolicy, DialRefusedError
from collectors.targets import (
    Poller,
    PollResult,
    PollTarget,
    load_targets,
    nothing_read,
    targets_fingerprint,
)
from collectors.terminals import TerminalBook
from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.logs import get_logger
from meterhub.reading import LOCAL_OFFSET_S, LOCAL_TZ, Quality, Reading
from meterhub.settings import Settings
from meterhub.supervise import Supervisor

log = get_logger(__name__)

POLLS = Counter("meterhub_collector_polls_total", "Meter polls", ["protocol", "outcome"])
MISSED = Counter(
    "meterhub_collector_missed_cycles_total", "Link cycles that overran into the next tick"
)
REGISTRY_LOADS = Counter(
    "meterhub_collector_registry_loads_total",
    "Registry reloads that found the polled meters changed and rebuilt the links",
)
CYCLE_SECONDS = Histogram(
    "meterhub_collector_cycle_seconds",
    "Time to poll the meters due on one link at one tick",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)

#: The tick (epoch seconds) of the link cycle running in this task: a cycle that overruns
#: keeps its tick, so whoever watches polls (a benchmark, a log) can tell its late polls
#: from the next cycle's.
CYCLE_TICK: contextvars.ContextVar[float] = contextvars.ContextVar("meterhub_cycle_tick")


@dataclass(frozen=True, slots=True)
class ScheduleOptions:
    timeout: float = 2.0
    retries: int = 2
    backoff: float = 0.2
    offline_after: int = 3
    clock_every: timedelta = timedelta(hours=1)
    #: Spread the first clock reads over the first clock_every (`meterhub collect` does).
    clock_spread: bool = False
    drift_tolerance: timedelta = timedelta(seconds=30)
    reload_every: float = 60.0
    flush_every: float = 5.0  # terminal health to the database
    handoff_delay: float = DEFAULT_DELAY  # seconds a reading waits for its batch
    handoff_size: int = DEFAULT_SIZE  # readings that make a batch go at once


def next_tick(now: float, interval: float) -> float:
    """The next epoch second after ``now`` on the ``interval`` grid of Asia/Shanghai time."""
    return (int((now + LOCAL_OFFSET_S) // interval) + 1) * interval - LOCAL_OFFSET_S


def is_due(tick: float, interval: float) -> bool:
    return round(tick + LOCAL_OFFSET_S) % round(interval) == 0


class LinkWorker:
    """Polls the meters of one link at their ticks, one request at a time, and hands each
    reading to ``handoff`` (shared by the links of a `Scheduler`) as soon as it is read.
    Without one it has a handoff of its own, which it flushes at the end of each cycle."""

    def __init__(
        self,
        targets: list[PollTarget],
        *,
        poller: Poller,
        sink: IngestSink,
        book: TerminalBook,
        options: ScheduleOptions,
        policy: DialPolicy | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.targets = targets
        self._poller, self._book, self._options = poller, book, options
        self._policy = policy or DialPolicy()
        self._own_handoff = handoff is None
        self._handoff = handoff or Handoff(
            sink, delay=options.handoff_delay, size=options.handoff_size
        )
        self.missed = 0

    def _next(self, now: float) -> float:
        return min(next_tick(now, t.interval.total_seconds()) for t in self.targets)

    async def run(self) -> None:
        tick = self._next(time.time())
        while True:
            await asyncio.sleep(max(0.0, tick - time.time()))
            due = [t for t in self.targets if is_due(tick, t.interval.total_seconds())]
            CYCLE_TICK.set(tick)
            started = time.perf_counter()
            try:
                await self.cycle(due)
            except Exception as exc:  # e.g. the spool is full: keep polling, say so loudly
                log.error("link cycle failed", link=self.targets[0].link, error=repr(exc))
            CYCLE_SECONDS.observe(time.perf_counter() - started)
            following = self._next(tick)
            if time.time() > following:
                self.missed += 1
                MISSED.inc()
                log.warning("link cycle overran", link=self.targets[0].link, meters=len(due))
                following = self._next(time.time())
            tick = following

    async def cycle(self, due: list[PollTarget]) -> None:
        """Poll ``due`` now, one after another, handing each meter's reading (and its
        garbage) to the sink as soon as it is read; returns when all of them are durable,
        raises the sink's error if a batch of them failed."""
        durable: set[asyncio.Future[None]] = set()
        try:
            for target in due:
                polled = await self._poll(target)
                if polled is not None:
                    reading, bad = polled
                    if reading is not None or bad:
                        durable.add(self._handoff.add([reading] if reading else [], bad))
        finally:  # what was read goes to the sink even if this cycle is cancelled
            if self._own_handoff:
                self._handoff.flush()
        if durable:  # a wait that a cancellation of this cycle does not pass on to a batch
            await asyncio.wait(durable)
        for batch in durable:
            if (error := batch.exception()) is not None:
                raise error

    async def _poll(
        self, target: PollTarget
    ) -> tuple[Reading | None, list[QuarantineRecord]] | None:
        now = datetime.now(LOCAL_TZ)
        opts = self._options
        read_clock = self._book.clock_due(
            target.meter_id, now, opts.clock_every, spread=opts.clock_spread
        )
        try:  # checked again at each dial: the registry may hold an older address
            dialled = await self._policy.checked(target)
        except DialRefusedError as exc:
            POLLS.labels(target.protocol, "refused").inc()
            log.warning("dial refused", meter_id=target.meter_id, error=str(exc))
            self._book.failure(target.meter_id, now, f"{type(exc).__name__}: {exc}")
            return None
        error = ""
        for attempt in range(self._options.retries + 1):
            try:
                async with asyncio.timeout(self._options.timeout * 4):
                    result = await self._poller.poll(dialled, read_clock=read_clock)
            except (CollectorError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self._options.retries:
                    await asyncio.sleep(self._options.backoff * 2**attempt)
                continue
            return self._reading(target, result)
        POLLS.labels(target.protocol, "failed").inc()
        self._book.failure(target.meter_id, datetime.now(LOCAL_TZ), error)
        return None

    def _reading(
        self, target: PollTarget, result: PollResult
    ) -> tuple[Reading | None, list[QuarantineRecord]]:
        """The poll's reading and its garbage; a meter that answered without a single value
        is a failed poll (its words in the terminal's status), never an empty reading."""
        at = result.measured_at or datetime.now(LOCAL_TZ)
        source = f"{target.protocol}:{target.link}"
        bad = [
            QuarantineRecord(
                source=source,
                reason=result.bad_reason,
                detail=f"{name}: {why}",
                payload=f'{{"field": "{name}", "problem": "{why}"}}',
                meter_id=target.meter_id,
                ts=at,
            )
            for name, why in result.bad_fields.items()
        ]
        if not result.values:
            POLLS.labels(target.protocol, "empty").inc()
            self._book.failure(target.meter_id, at, nothing_read(result))
            return None, bad
        POLLS.labels(target.protocol, "ok").inc()
        self._book.success(target.meter_id, at)
        if result.meter_time is not None:
            self._book.clock(target.meter_id, meter_time=result.meter_time, host_time=at)
        quality = Quality.CLOCK_DRIFT if self._book.drifting(target.meter_id) else Quality.GOOD
        reading = Reading(
            meter_id=target.meter_id, ts=at, quality=quality, source=source, **result.values
        )
        return reading, bad


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again those still running after a
    second: a cancellation that meets an expiring `asyncio.timeout` can come out as the
    timeout's `TimeoutError` (Python 3.11), which a poll takes for a silent meter."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    for task in tasks:  # their errors are the supervisor's to report: retrieved here
        if not task.cancelled():
            task.exception()


class Scheduler:
    """All links of the registry, reloaded periodically; terminal health flushed to the DB."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: IngestSink,
        pollers: Mapping[str, Poller],
        options: ScheduleOptions | None = None,
        name: str = "collector",
        supervisor: Supervisor | None = None,
    ) -> None:
        self._settings, self._sink, self._pollers = settings, sink, pollers
        self._supervisor = supervisor or Supervisor()
        self._options = options or ScheduleOptions()
        self.book = TerminalBook(
            offline_after=self._options.offline_after, drift_tolerance=self._options.drift_tolerance
        )
        self._policy = DialPolicy(settings.collect_network_list)
        self._handoff = Handoff(
            sink, delay=self._options.handoff_delay, size=self._options.handoff_size
        )
        self._links: dict[str, tuple[tuple[PollTarget, ...], asyncio.Task[None]]] = {}
        self._workers: dict[str, LinkWorker] = {}
        self._conn: asyncpg.Connection | None = None
        self._db_lock = asyncio.Lock()
        self._name = name
        self._loaded: tuple[int, int] | None = None  # fingerprint of the links' targets

    @property
    def links(self) -> dict[str, tuple[PollTarget, ...]]:
        """The meters each running link worker polls."""
        return {link: targets for link, (targets, _) in self._links.items()}

    @property
    def missed_cycles(self) -> int:
        return sum(worker.missed for worker in self._workers.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; survives database restarts (readings go to the spool,
        registry reloads and health flushes wait for the database to return)."""
        flush = self._supervisor.start("collector-flusher", lambda: self._flusher(stop))
        try:
            while not stop.is_set():
                await self._try(self._reload, "could not reload the registry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._options.reload_every)
            await flush
        finally:
            await _cancel_all([flush, *(t for _, t in self._links.values())])
            await self._handoff.drain()  # the readings of cycles cut short are stored too
            await self._try(self.book.flush, "could not record terminal state")
            await self._try(self._sign_off, "could not remove the heartbeat")
            if self._conn is not None:
                self._conn.terminate()

    async def _db(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._settings.dsn(), timeout=5)
        return self._conn

    async def _try(
        self, action: Callable[[asyncpg.Connection], Awaitable[object]], failure: str
    ) -> None:
        async with self._db_lock:  # reloads and health flushes share one connection
            try:
                await action(await self._db())
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(failure, error=repr(exc))
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None

    async def _reload(self, conn: asyncpg.Connection) -> None:
        protocols = list(self._pollers)
        current = await targets_fingerprint(conn, protocols)
        if current != self._loaded:  # else the registry holds what the links poll
            self._apply(await load_targets(conn, protocols))
            self._loaded = current
            REGISTRY_LOADS.inc()
            log.info("registry loaded", links=len(self._links), meters=self._meters())
        await conn.execute(
            "INSERT INTO collector_heartbeats (name, started_at, beat_at, meters) "
            "VALUES ($1, now(), now(), $2) ON CONFLICT (name) DO UPDATE SET beat_at = now(), "
            "meters = EXCLUDED.meters",
            self._name,
            self._meters(),
        )

    def _meters(self) -> int:
        return sum(len(targets) for targets, _ in self._links.values())

    def _apply(self, links: dict[str, list[PollTarget]]) -> None:
        """Start, restart or stop link workers to poll ``links``."""
        for link in set(self._links) - set(links):
            _, task = self._links.pop(link)
            task.cancel()
            self._workers.pop(link, None)
        for link, targets in links.items():
            current = self._links.get(link)
            if current is not None and current[0] == tuple(targets):
                continue
            if current is not None:
                current[1].cancel()
            worker = LinkWorker(
                targets,
                poller=self._pollers[targets[0].protocol],
                sink=self._sink,
                book=self.book,
                options=self._options,
                policy=self._policy,
                handoff=self._handoff,
            )
            self._workers[link] = worker
            task = self._supervisor.start(f"link {link}", worker.run, label="collector-link")
            self._links[link] = (tuple(targets), task)

    async def _flusher(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._options.flush_every)
            await self._try(self._beat, "could not record terminal state")

    async def _sign_off(self, conn: asyncpg.Connection) -> None:
        """A collector that stops cleanly is not a stuck one: /readyz forgets it."""
        await conn.execute("DELETE FROM collector_heartbeats WHERE name = $1", self._name)

    async def _beat(self, conn: asyncpg.Connection) -> None:
        await self.book.flush(conn)
        await conn.execute(
            "UPDATE collector_heartbeats SET beat_at = now() WHERE name = $1", self._name
        )

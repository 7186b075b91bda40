"""Readiness checks that really touch the database and the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.dirty_marks import BACKLOG_COUNT_LIMIT, backlog
from ingest.interval_worker import RUNNING
from ingest.sink import IngestSink
from meterhub.supervise import Supervisor


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    latency_ms: float
    #: Figures behind ``detail`` for a keyed caller (the dashboard shows them), e.g. a backlog.
    figures: Mapping[str, object] = field(default_factory=dict)


async def check_database(pool: asyncpg.Pool | None, *, timeout: float = 2.0) -> Check:
    started = time.perf_counter()
    if pool is None:
        return Check("database", False, "not reached since the start; retrying", 0.0)
    try:
        async with asyncio.timeout(timeout), pool.acquire() as conn:
            version = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            )
        detail = f"timescaledb {version}" if version else "timescaledb extension missing"
        ok = version is not None
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Check("database", ok, detail, (time.perf_counter() - started) * 1000)


def _mqtt_connect(url: str, timeout: float) -> str | None:
    """Connect and authenticate to the broker; returns an error text or None."""
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=10)
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        return None if client.is_connected() else "no CONNACK (refused or timed out)"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.disconnect()


async def check_broker(url: str, *, timeout: float = 2.0) -> Check:
    started = time.perf_counter()
    error = await asyncio.to_thread(_mqtt_connect, url, timeout)
    latency = (time.perf_counter() - started) * 1000
    return Check("broker", error is None, error or "connected", latency)


#: How long one broker check answers every /readyz probe (a probe must not cost a connection).
BROKER_CHECK_TTL = 5.0


class BrokerProbe:
    """The broker check, run at most once per ``ttl`` seconds however many probes ask;
    concurrent probes wait for the one check under way."""

    def __init__(self, url: str, *, ttl: float = BROKER_CHECK_TTL) -> None:
        self._url = url
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._last: tuple[float, Check] | None = None

    def _fresh(self) -> Check | None:
        if self._last is not None and time.monotonic() - self._last[0] < self._ttl:
            return self._last[1]
        return None

    async def check(self) -> Check:
        if (cached := self._fresh()) is not None:
            return cached
        async with self._lock:
            if (cached := self._fresh()) is not None:
                return cached
            result = await check_broker(self._url)
            self._last = (time.monotonic(), result)
            return result


#: A collector that beat within a day but not within this many seconds is considered stuck.
COLLECTOR_STALE_AFTER = 60.0


async def check_collectors(pool: asyncpg.Pool | None, *, timeout: float = 2.0) -> Check:
    """Collector processes that reported in the last day must have beaten recently."""
    started = time.perf_counter()
    if pool is None:
        return Check("collectors", False, "database unreachable", 0.0)
    try:
        async with asyncio.timeout(timeout):
            rows = await pool.fetch(
                "SELECT name, extract(epoch FROM now() - beat_at)::float8 AS age, meters "
                "FROM collector_heartbeats WHERE beat_at > now() - interval '1 day' ORDER BY name"
            )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return Check("collectors", False, f"{type(exc).__name__}: {exc}", 0.0)
    stale = [r["name"] for r in rows if r["age"] > COLLECTOR_STALE_AFTER]
    if not rows:
        detail = "no collector has reported (API-only deployment)"
    elif stale:
        detail = f"no heartbeat for over {COLLECTOR_STALE_AFTER:.0f} s: {', '.join(stale)}"
    else:
        detail = ", ".join(f"{r['name']} ({r['meters']} meters)" for r in rows)
    return Check("collectors", not stale, detail, (time.perf_counter() - started) * 1000)


def check_spool(sink: IngestSink | None) -> Check:
    """The ingest spool: in use while the database is away or being replayed, and damaged
    segments set aside in ``corrupt/``. A set-aside segment does not make the process
    unready (new readings are stored; restarting or routing away would not help), it is a
    detail for the operator, with the metric ``meterhub_spool_set_aside_segments``."""
    if sink is None:
        return Check("spool", False, "the ingest sink is not running", 0.0)
    started = time.perf_counter()
    state = sink.spool_state()
    if state.degraded:
        detail = (
            f"in use: {state.bytes} bytes in {state.segments} segment(s), "
            f"oldest {state.oldest_age:.0f} s"
        )
    else:
        detail = "empty" if not state.segments else f"{state.bytes} bytes"
    if state.corrupt_segments:
        detail += (
            f"; {len(state.corrupt_segments)} damaged segment(s) set aside in "
            f"{state.directory / 'corrupt'} (their intact records were replayed)"
        )
    return Check("spool", True, detail, (time.perf_counter() - started) * 1000)


def check_workers(supervisor: Supervisor | None) -> Check:
    """Background tasks: not ready while one has died or is waiting to be restarted."""
    if supervisor is None:
        return Check("workers", False, "the supervisor is not running", 0.0)
    states = supervisor.states()
    down = [s for s in states if s.down]
    restarted = [s for s in states if s.restarts and not s.down]
    parts = [f"{s.name} {'dead' if s.dead else 'restarting'} after {s.last_error}" for s in down]
    parts += [
        f"{s.name} restarted {s.restarts} time(s), last after {s.last_error}" for s in restarted
    ]
    detail = "; ".join(parts) or f"{len(states)} running"
    return Check("workers", not down, detail, 0.0)


#: The supervised task name of the API's own interval worker (`api.app`).
INTERVAL_WORKER_TASK = "interval-worker"


class WorkerRun(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # crashed, waiting for its back-off
    DEAD = "dead"
    STOPPED = "stopped"  # configured here, not running (the process is stopping)
    ELSEWHERE = "elsewhere"  # not configured in this process: `meterhub derive` does it


@dataclass(frozen=True, slots=True)
class IntervalWorkerState:
    run: WorkerRun
    uptime: float | None = None  # seconds, while running
    since_pass: float | None = None  # seconds since its last pass ended
    restarts: int = 0
    last_error: str = ""

    def figures(self) -> dict[str, object]:
        return {
            "state": self.run.value,
            "uptime_seconds": _rounded(self.uptime),
            "last_pass_age_seconds": _rounded(self.since_pass),
            "restarts": self.restarts,
            "last_error": self.last_error or None,
        }

    def describe(self) -> str:
        if self.run is WorkerRun.RUNNING:
            since = "no pass yet" if self.since_pass is None else f"{self.since_pass:.0f} s"
            return f"worker running for {self.uptime or 0:.0f} s, last pass {since}"
        if self.run is WorkerRun.ELSEWHERE:
            return "no worker in this process (meterhub derive expected)"
        if self.last_error:
            return f"worker {self.run.value} after {self.last_error}"
        return f"worker {self.run.value}"


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def interval_worker_state(
    supervisor: Supervisor | None, *, configured: bool
) -> IntervalWorkerState:
    """The interval worker of this process: running, waiting to restart, dead, or not
    configured here."""
    uptime = RUNNING.uptime()
    task = next(
        (s for s in (supervisor.states() if supervisor else []) if s.name == INTERVAL_WORKER_TASK),
        None,
    )
    restarts, error = (task.restarts, task.last_error) if task else (0, "")
    if task is not None and task.dead:
        run = WorkerRun.DEAD
    elif task is not None and task.restarting:
        run = WorkerRun.RESTARTING
    elif uptime is not None:
        run = WorkerRun.RUNNING
    elif configured:
        run = WorkerRun.STOPPED
    else:
        return IntervalWorkerState(WorkerRun.ELSEWHERE)
    return IntervalWorkerState(run, uptime, RUNNING.since_pass(), restarts, error)


async def check_intervals(
    pool: asyncpg.Pool | None,
    *,
    stall_after: float,
    worker: IntervalWorkerState,
    timeout: float = 2.0,
) -> Check:
    """Interval derivation keeps up: not ready when the oldest dirty range has waited over
    ``stall_after`` seconds although a worker has been running that long (a dead worker is
    the workers check's; with none in this process, `meterhub derive` is expected to run).
    Its figures: the dirty backlog (``ranges``, counted up to `BACKLOG_COUNT_LIMIT`, and
    ``oldest_age_seconds``) and the ``worker``'s state."""
    started = time.perf_counter()
    if pool is None:
        return Check("intervals", False, "database unreachable", 0.0)
    try:
        async with asyncio.timeout(timeout):
            pending = await backlog(pool)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return Check("intervals", False, f"{type(exc).__name__}: {exc}", 0.0)
    uptime = worker.uptime
    stalled = pending.oldest_age > stall_after and (uptime is None or uptime > stall_after)
    capped = pending.ranges >= BACKLOG_COUNT_LIMIT
    count = f"at least {pending.ranges}" if capped else str(pending.ranges)
    detail = f"{count} dirty range(s), oldest {pending.oldest_age:.0f} s; {worker.describe()}"
    if stalled:
        detail = f"stalled: {detail} (limit {stall_after:.0f} s)"
    figures = {
        "ranges": pending.ranges,
        "ranges_capped": capped,
        "oldest_age_seconds": round(pending.oldest_age, 1),
        "worker": worker.figures(),
    }
    latency = (time.perf_counter() - started) * 1000
    return Check("intervals", not stalled, detail, latency, figures)

"""The sink's recovery under load and under faults of its own, against a private PostgreSQL:
the replay finishes although producers keep sending faster than it replays; a recovery
that crashes is restarted; a crashed writer is not swallowed by `close`."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ingest import replay as replay_module
from ingest.errors import SinkClosedError
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from meterhub.supervise import TASK_RESTARTS, TASKS_DOWN, Supervisor, TaskFailedError
from tests.pg_cluster import PrivatePostgres
from tests.reliability.accounting import Ledger, Tally, assert_exact
from tests.reliability.support import connection
from tests.support import create_meters

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, tzinfo=LOCAL_TZ)


def _settings(sink_settings: Settings, cluster: PrivatePostgres) -> Settings:
    return sink_settings.model_copy(update={"database_url": SecretStr(cluster.dsn())})


class Load:
    """``producers`` tasks submitting one reading per meter per call, each ``pause`` s after
    the last was acknowledged, each call a new timestamp; remembers what was acknowledged
    and when."""

    def __init__(
        self, sink: IngestSink, meters: list[int], *, producers: int = 4, pause: float = 0.01
    ) -> None:
        self._sink, self._meters, self._pause = sink, meters, pause
        self._numbers = itertools.count()
        self._stop = asyncio.Event()
        self.acked: list[tuple[float, int, bool]] = []  # (time, call number, spooled)
        self._tasks = [asyncio.create_task(self._produce()) for _ in range(producers)]

    async def _produce(self) -> None:
        while not self._stop.is_set():
            n = next(self._numbers)
            ts = T0 + timedelta(minutes=n)
            batch = [Reading(meter_id=m, ts=ts, energy=float(n)) for m in self._meters]
            result = await self._sink.submit(batch)
            self.acked.append((time.monotonic(), n, result.spooled))
            await asyncio.sleep(self._pause)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def after(self, moment: float, *, spooled: bool) -> int:
        return sum(1 for at, _, s in self.acked if at > moment and s is spooled)


async def _count(cluster: PrivatePostgres, name: str, load: Load, meters: list[int]) -> Tally:
    """Everything the load submitted was acknowledged (``submit`` returned)."""
    ledger = Ledger(name)
    ledger.send(
        ((m, T0 + timedelta(minutes=n)), float(n)) for _, n, _ in load.acked for m in meters
    )
    ledger.ack(ledger.sent)
    async with connection(cluster.dsn()) as conn:
        return await ledger.settle(conn)


def _slowed_replay(monkeypatch: pytest.MonkeyPatch, delay: float) -> list[Path]:
    """Make each segment's replay ``delay`` s slower: replay slower than the load."""
    real = replay_module.replay_segment
    replayed: list[Path] = []

    async def slow(conn: Any, path: Path, **kw: Any) -> None:
        await asyncio.sleep(delay)
        replayed.append(path)
        await real(conn, path, **kw)

    monkeypatch.setattr("ingest.recovery.replay_segment", slow)
    return replayed


async def test_the_replay_finishes_while_producers_keep_sending(
    sink_settings: Settings, cluster: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each replayed segment costs 0.3 s more than it would, so new batches always fill the
    next segment meanwhile: without priority for the replay's last rounds it never ends."""
    async with connection(cluster.dsn()) as conn:
        meters = await create_meters(conn, 10)
    replayed = _slowed_replay(monkeypatch, 0.3)
    async with IngestSink(_settings(sink_settings, cluster)) as sink:
        load = Load(sink, meters)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(cluster.stop, mode="immediate")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.start)
        back = time.monotonic()
        await sink.wait_replayed(timeout=60)  # without priority for its last rounds: never
        replayed_after = time.monotonic() - back
        await asyncio.sleep(0.5)  # the load goes on, now to the database
        await load.stop()
    tally = await _count(cluster, "sink replay under continuous load [sink]", load, meters)
    print(f"replayed {len(replayed)} segment(s) in {replayed_after:.1f} s")
    assert_exact(tally)
    assert load.after(back, spooled=True) >= 1  # load went on while the replay ran
    assert load.after(back + replayed_after, spooled=False) >= 10  # then straight to the DB


async def test_a_recovery_that_crashes_is_restarted(
    sink_settings: Settings, cluster: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connection(cluster.dsn()) as conn:
        meters = await create_meters(conn, 5)
    real = replay_module.replay_segment
    crashes = 0

    async def crashing_once(conn: Any, path: Path, **kw: Any) -> None:
        nonlocal crashes
        if crashes == 0:
            crashes += 1
            raise RuntimeError("a bug in the replay")  # not a connection error
        await real(conn, path, **kw)

    monkeypatch.setattr("ingest.recovery.replay_segment", crashing_once)
    restarts = TASK_RESTARTS.labels("ingest-recovery")._value.get()
    async with IngestSink(_settings(sink_settings, cluster)) as sink:
        await asyncio.to_thread(cluster.stop, mode="immediate")
        load = Load(sink, meters, producers=2)
        await asyncio.sleep(0.5)
        await load.stop()
        assert all(spooled for _, _, spooled in load.acked)
        await asyncio.to_thread(cluster.start)
        await sink.wait_replayed(timeout=30)
    assert crashes == 1
    assert TASK_RESTARTS.labels("ingest-recovery")._value.get() == restarts + 1
    tally = await _count(cluster, "sink recovery crashed once [sink]", load, meters)
    assert_exact(tally)
    assert tally.acked > 0


async def test_a_crashed_writer_fails_its_producers_and_close_raises(
    sink_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fatal: list[str] = []
    supervisor = Supervisor(on_fatal=lambda name, exc: fatal.append(name))
    sink = IngestSink(sink_settings.model_copy(update={"writers": 1}), supervisor=supervisor)
    await sink.start()

    async def broken(slot: int, chunks: list[Any]) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(sink, "_settle", broken)  # a bug injected into the writer
    with pytest.raises(SinkClosedError, match="writer crashed"):
        await sink.submit([Reading(meter_id=1, ts=T0, energy=1.0)])
    await asyncio.sleep(0.01)
    assert fatal == ["ingest-writer-0"]
    with pytest.raises(TaskFailedError, match="ingest-writer-0"):
        await sink.close()
    with pytest.raises(TaskFailedError):
        await supervisor.stop()
    TASKS_DOWN.dec()  # this test's dead writer: leave the process gauge as it was

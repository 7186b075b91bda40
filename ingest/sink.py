"""The ingest pipeline: submit -> bounded queue -> batcher -> writers (or the spool)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import asyncpg

from ingest import batch_codec, metrics
from ingest.errors import BackpressureError, SinkClosedError, SpoolFullError
from ingest.isolate import CONNECTION_ERRORS, write_isolating
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord
from ingest.recovery import SpoolRecovery
from ingest.registry import MeterRegistry
from ingest.spool import Spool
from ingest.writer import Batch, prepare_connection, write
from meterhub.logs import get_logger
from meterhub.reading import Reading
from meterhub.settings import Settings
from meterhub.supervise import Backoff, Supervisor

log = get_logger(__name__)

_FULL_LOG_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class SpoolState:
    """The spool as `/readyz` reports it."""

    directory: Path
    bytes: int
    segments: int
    oldest_age: float
    corrupt_segments: list[Path]
    degraded: bool


@dataclass(slots=True)
class _Chunk:
    readings: Sequence[Reading]
    rejects: list[QuarantineRecord]
    future: asyncio.Future[SubmitResult]

    @property
    def size(self) -> int:
        return max(1, len(self.readings) + len(self.rejects))


class IngestSink:
    """Hand readings to the database, durably.

    `submit` returns once its readings are committed **or** fsynced to the spool, with exact
    counts. When the queue is full `submit` waits; `try_submit` raises `BackpressureError`.

    Example::

        async with IngestSink(get_settings()) as sink:
            result = await sink.submit([Reading(meter_id=1, ts=ts, energy=1206.42)])
            assert result.accepted == 1
    """

    def __init__(
        self, settings: Settings, *, mark_dirty: bool = True, supervisor: Supervisor | None = None
    ) -> None:
        self._settings = settings
        self._own_supervisor = supervisor is None
        self._supervisor = supervisor or Supervisor()
        self._mark_dirty = mark_dirty
        self._future_tolerance = timedelta(seconds=settings.future_tolerance)
        self._registry = MeterRegistry()
        self._spool = Spool(settings.spool_path, max_bytes=settings.spool_max_bytes)
        self._spool_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Chunk | None] = asyncio.Queue()
        self._batches: asyncio.Queue[list[_Chunk] | None] = asyncio.Queue(settings.writers)
        self._queued = 0
        self._idle_writers = 0
        self._space = asyncio.Condition()
        self._conns: list[asyncpg.Connection | None] = [None] * settings.writers
        self._degraded = False
        self._database_back = asyncio.Event()
        self._database_back.set()
        self._recoverer = SpoolRecovery(
            dsn=settings.dsn(),
            spool=self._spool,
            lock=self._spool_lock,
            write_batch=self._write_batch,
            count=_count,
            on_progress=self._update_spool_metrics,
            on_replayed=self._replayed,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self._spool_full_logged = -_FULL_LOG_EVERY  # a full spool: ERROR once a minute, else DEBUG

    async def __aenter__(self) -> IngestSink:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- producer side -------------------------------------------------------------------

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        """Store ``readings`` (and quarantine ``rejects`` found while parsing a payload);
        returns when durable. Waits while the queue is full."""
        chunk = self._chunk(readings, rejects)
        async with self._space:
            await self._space.wait_for(lambda: self._has_room(chunk.size))
            self._enqueue(chunk)
        return await chunk.future

    async def try_submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        """Like `submit`, but raises `BackpressureError` at once when the queue is full."""
        chunk = self._chunk(readings, rejects)
        if not self._has_room(chunk.size):
            chunk.future.cancel()
            raise BackpressureError(f"{self._queued} readings are queued; retry shortly")
        self._enqueue(chunk)
        return await chunk.future

    def _chunk(self, readings: Sequence[Reading], rejects: Sequence[QuarantineRecord]) -> _Chunk:
        if self._closing or not self._tasks:
            raise SinkClosedError("the ingest sink is not running")
        return _Chunk(readings, list(rejects), asyncio.get_running_loop().create_future())

    def _has_room(self, size: int) -> bool:
        return self._queued == 0 or self._queued + size <= self._settings.queue_max

    def _enqueue(self, chunk: _Chunk) -> None:
        self._queued += chunk.size
        metrics.QUEUE_DEPTH.set(self._queued)
        self._queue.put_nowait(chunk)

    async def _release(self, size: int) -> None:
        async with self._space:
            self._queued -= size
            metrics.QUEUE_DEPTH.set(self._queued)
            self._space.notify_all()

    @property
    def degraded(self) -> bool:
        """True while the database is away and readings go to the spool."""
        return self._degraded

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if not self._spool.is_empty():
            log.warning(
                "spool holds readings from an earlier run; replaying",
                spool=str(self._spool.directory),
            )
            self._mark_down()
        else:  # the writers use the database until a write fails (then `_mark_down`)
            metrics.DATABASE_UP.set(1)
        self._update_spool_metrics()
        # A crashed batcher or writer held chunks nobody else can settle: not restartable.
        start = self._supervisor.start
        self._tasks = [start("ingest-batcher", self._batcher, restart=False)]
        self._tasks += [
            start(f"ingest-writer-{i}", functools.partial(self._writer, i), restart=False,
                  label="ingest-writer")
            for i in range(self._settings.writers)
        ]  # fmt: skip

    async def close(self) -> None:
        """Flush everything queued (to the database or the spool), then stop.
        `TaskFailedError` if the batcher or a writer had crashed (they are not restarted)."""
        if self._closing:
            return
        self._closing = True
        self._queue.put_nowait(None)
        pending = set(self._tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if self._supervisor.failed(done):  # the others would wait for it forever
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                self._fail_queued()
                break
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        for conn in self._conns:
            if conn is not None:
                conn.terminate()
        self._spool.release()
        if self._own_supervisor:
            await self._supervisor.stop()
        else:
            self._supervisor.raise_if_failed(self._tasks)

    def _fail_queued(self) -> None:
        error = SinkClosedError("the ingest sink stopped after a crash")
        while not self._queue.empty():
            chunk = self._queue.get_nowait()
            if chunk is not None and not chunk.future.done():
                chunk.future.set_exception(error)
        while not self._batches.empty():
            for chunk in self._batches.get_nowait() or ():
                if not chunk.future.done():
                    chunk.future.set_exception(error)

    async def wait_replayed(self, timeout: float = 60.0) -> None:
        """Wait until the spool has been replayed and writers use the database again."""
        async with asyncio.timeout(timeout):
            await self._database_back.wait()

    # -- batching and writing ------------------------------------------------------------

    async def _batcher(self) -> None:
        """Group chunks into batches. A batch goes out as soon as a writer is idle (low
        latency when load is light); while every writer is busy it grows up to
        ``batch_size`` or ``batch_max_age`` (large COPYs when load is heavy)."""
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            first = await self._queue.get()
            if first is None:
                break
            chunks, size = [first], first.size
            deadline = loop.time() + self._settings.batch_max_age
            while size < self._settings.batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if self._idle_writers > 0 or remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), min(remaining, 0.005))
                    except TimeoutError:
                        continue  # look again whether a writer has become idle
                if nxt is None:
                    done = True
                    break
                chunks.append(nxt)
                size += nxt.size
            await self._batches.put(chunks)
        for _ in self._conns:
            await self._batches.put(None)

    async def _next_batch(self) -> list[_Chunk] | None:
        self._idle_writers += 1
        try:
            return await self._batches.get()
        finally:
            self._idle_writers -= 1

    async def _writer(self, slot: int) -> None:
        while (chunks := await self._next_batch()) is not None:
            try:
                await self._settle(slot, chunks)
            except BaseException as exc:  # a crash: no producer may wait for these forever
                for chunk in chunks:
                    if not chunk.future.done():
                        chunk.future.set_exception(
                            SinkClosedError(f"ingest writer crashed: {exc!r}")
                        )
                raise
            finally:
                await self._release(sum(c.size for c in chunks))

    async def _settle(self, slot: int, chunks: list[_Chunk]) -> None:
        batch = Batch([c.readings for c in chunks], [r for c in chunks for r in c.rejects])
        try:
            results = await self._write_or_spool(slot, batch)
        except Exception as exc:  # spool full, or a bug: the producers must hear of it
            self._log_refusal(exc)
            for chunk in chunks:
                if not chunk.future.done():
                    chunk.future.set_exception(exc)
        else:
            for chunk, result in zip(chunks, results, strict=True):
                if not chunk.future.done():
                    chunk.future.set_result(result)

    async def _connection(self, slot: int) -> asyncpg.Connection:
        conn = self._conns[slot]
        if conn is None or conn.is_closed():
            conn = await asyncpg.connect(self._settings.dsn(), timeout=5)
            await prepare_connection(conn)
            await self._registry.follow(conn)
            self._conns[slot] = conn
        return conn

    async def _write_or_spool(self, slot: int, batch: Batch) -> list[SubmitResult]:
        while True:
            if not self._degraded:
                started = time.perf_counter()
                try:
                    conn = await self._connection(slot)
                    async with asyncio.timeout(60):
                        results = await self._write_batch(conn, batch)
                except CONNECTION_ERRORS as exc:
                    log.error("database unreachable; spooling", error=repr(exc))
                    self._drop_connection(slot)
                    self._mark_down()
                else:
                    metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
                    metrics.BATCH_SIZE.observe(len(batch))
                    _count(results)
                    return results
            if await self._append_to_spool(batch):
                return [SubmitResult(spooled=True) for _ in batch.chunks]
            await self._recoverer.writers_may_go.wait()  # the replay's last round, then the DB

    async def _write_batch(self, conn: asyncpg.Connection, batch: Batch) -> list[SubmitResult]:
        """Write a batch; if the database refuses it, find and quarantine the culprits."""

        async def write_to(part: Batch) -> list[SubmitResult]:
            return await write(
                conn,
                part,
                self._registry,
                future_tolerance=self._future_tolerance,
                mark_dirty=self._mark_dirty,
            )

        try:
            return await write_to(batch)
        except CONNECTION_ERRORS:
            raise
        except asyncpg.PostgresError as exc:
            log.warning("database refused a batch; isolating the bad readings", error=str(exc))
            return await write_isolating(write_to, batch)

    def _drop_connection(self, slot: int) -> None:
        conn = self._conns[slot]
        if conn is not None:
            conn.terminate()
        self._conns[slot] = None

    # -- the spool -----------------------------------------------------------------------

    async def _append_to_spool(self, batch: Batch) -> bool:
        """Spool ``batch``; False (nothing written) while the replay has the last word."""
        payload = batch_codec.encode(batch)
        async with self._spool_lock:
            if self._recoverer.spool_closed:
                return False
            await asyncio.to_thread(self._spool.append, payload)
        metrics.SPOOLED_BATCHES.inc()
        self._update_spool_metrics()
        return True

    def _log_refusal(self, exc: Exception) -> None:
        if not isinstance(exc, SpoolFullError):
            log.error("batch could be neither written nor spooled", error=repr(exc))
        elif time.monotonic() - self._spool_full_logged >= _FULL_LOG_EVERY:
            self._spool_full_logged = time.monotonic()
            log.error("spool full: batches are refused until it has room", error=str(exc))
        else:
            log.debug("spool full: batch refused", error=str(exc))

    def _update_spool_metrics(self) -> None:
        metrics.SPOOL_BYTES.set(self._spool.total_bytes())
        metrics.SPOOL_OLDEST_AGE.set(self._spool.oldest_age())
        metrics.CORRUPT_SEGMENTS.set(len(self._spool.corrupt_segments()))

    def spool_state(self) -> SpoolState:
        """What the spool holds now (for readiness reports)."""
        return SpoolState(
            directory=self._spool.directory,
            bytes=self._spool.total_bytes(),
            segments=self._spool.segment_count(),
            oldest_age=self._spool.oldest_age(),
            corrupt_segments=self._spool.corrupt_segments(),
            degraded=self._degraded,
        )

    def _mark_down(self) -> None:
        self._degraded = True
        self._database_back.clear()
        metrics.DATABASE_UP.set(0)
        if self._recovery is None or self._recovery.done():
            self._recovery = self._supervisor.start(
                "ingest-recovery", self._recoverer.run, backoff=Backoff(first=1.0, most=30.0)
            )

    def _replayed(self) -> None:
        self._degraded = False
        self._database_back.set()
        metrics.DATABASE_UP.set(1)
        self._update_spool_metrics()


def _count(results: list[SubmitResult]) -> None:
    metrics.READINGS.labels("accepted").inc(sum(r.accepted for r in results))
    metrics.READINGS.labels("duplicate").inc(sum(r.duplicates for r in results))
    metrics.READINGS.labels("conflict").inc(sum(r.conflicts for r in results))
    for result in results:
        for rejection in result.rejected:
            metrics.READINGS.labels("quarantined").inc()
            metrics.QUARANTINED.labels(str(rejection.reason)).inc()

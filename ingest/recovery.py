"""Bringing a degraded sink back: wait for the database, replay the spool in rounds, hand
back to the writers.

Round one replays every segment closed when the database returned, while new batches keep
going to the spool. From round two on the writers do not spool (`spool_closed`): they wait
for `writers_may_go`, so the spool stops growing and the replay ends even while clients
send as fast as it replays (that wait is a short stall producers feel as backpressure).
The sink runs `SpoolRecovery.run` under its supervisor: an error other than a lost
connection is logged there and the recovery started again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from ingest import metrics
from ingest.outcome import SubmitResult
from ingest.replay import WriteBatch, replay_segment
from ingest.spool import Spool
from ingest.writer import prepare_connection
from meterhub.db import CONNECTION_ERRORS
from meterhub.logs import get_logger

log = get_logger(__name__)

_CONNECT_FAILURES: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
_RETRY_EVERY = 1.0


class SpoolRecovery:
    """Replays ``spool`` through ``write_batch``; ``on_replayed`` is called (holding
    ``lock``, the spool's) once nothing is left, ``on_progress`` after each segment."""

    def __init__(
        self,
        *,
        dsn: str,
        spool: Spool,
        lock: asyncio.Lock,
        write_batch: WriteBatch,
        count: Callable[[list[SubmitResult]], None],
        on_progress: Callable[[], None],
        on_replayed: Callable[[], None],
    ) -> None:
        self._dsn, self._spool, self._lock = dsn, spool, lock
        self._write_batch, self._count = write_batch, count
        self._on_progress, self._on_replayed = on_progress, on_replayed
        self.spool_closed = False  # read by the writers while holding ``lock``
        self.writers_may_go = asyncio.Event()
        self.writers_may_go.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    conn = await asyncpg.connect(self._dsn, timeout=5)
                except _CONNECT_FAILURES:
                    await asyncio.sleep(_RETRY_EVERY)
                    continue
                try:
                    await prepare_connection(conn)
                    await self._replay(conn)
                    return
                except CONNECTION_ERRORS as exc:
                    log.warning("replay interrupted; retrying", error=repr(exc))
                    self._open_spool()
                    await asyncio.sleep(_RETRY_EVERY)
                finally:
                    conn.terminate()
        finally:
            self._open_spool()  # done, crashed or stopped: writers never wait for nothing

    def _open_spool(self) -> None:
        self.spool_closed = False
        self.writers_may_go.set()

    async def _replay(self, conn: asyncpg.Connection) -> None:
        rounds = 0
        while True:
            async with self._lock:
                if rounds > 0 and not self.spool_closed:
                    self.spool_closed = True
                    self.writers_may_go.clear()
                self._spool.rotate()
                segments = self._spool.closed_segments()
                metrics.REPLAY_PENDING_SEGMENTS.set(len(segments))
                if not segments:
                    self._on_replayed()
                    self._open_spool()
                    log.info("spool replayed; writing to the database again", rounds=rounds)
                    return
            rounds += 1
            log.info("replaying the spool", round=rounds, segments=len(segments))
            for path in segments:
                await replay_segment(
                    conn,
                    path,
                    spool=self._spool,
                    write_batch=self._write_batch,
                    count=self._count,
                )
                self._on_progress()
                metrics.REPLAY_PENDING_SEGMENTS.dec()

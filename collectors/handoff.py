"""The polled readings' way to the ingest sink: each reading as soon as it is read, in small
batches bounded by time, shared by every link of a collector.

A reading waits at most ``delay`` seconds before its batch is submitted (at once when the
batch reaches ``size`` readings), so the first meter of a slow bus is stored long before
the bus's last meter has been read, and thousands of links still make a few submits a
second, not one per reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.quarantine import QuarantineRecord
from ingest.sink import IngestSink
from meterhub.reading import Reading

#: Seconds a reading may wait for its batch to be submitted.
DEFAULT_DELAY = 0.5
#: Readings that make a batch go at once.
DEFAULT_SIZE = 2_000


@dataclass(slots=True)
class _Batch:
    future: asyncio.Future[None]
    readings: list[Reading] = field(default_factory=list)
    rejects: list[QuarantineRecord] = field(default_factory=list)


def _observe(future: asyncio.Future[None]) -> None:
    """A batch's failure is its waiters' to report; a waiter cancelled meanwhile (a link
    reloaded mid-cycle) must not leave it as an exception never retrieved."""
    if not future.cancelled():
        future.exception()


class Handoff:
    """Batches readings from many producers into `IngestSink.submit` calls.

    `add` never waits: it puts the readings (and the quarantine records found with them)
    into the open batch and returns that batch's future, done when the batch is durable
    (committed or fsynced to the spool) or failed with the sink's error. Every reading is
    in exactly one batch and every batch is submitted once, so nothing is sent twice, and
    a producer that awaits its futures knows its readings are durable, as it would after
    its own ``submit``. `drain` sends what is open and waits for every batch under way.

    Example::

        handoff = Handoff(sink, delay=0.5)
        durable = handoff.add([reading])
        ...  # read the next meter meanwhile
        await durable
        await handoff.drain()
    """

    def __init__(
        self, sink: IngestSink, *, delay: float = DEFAULT_DELAY, size: int = DEFAULT_SIZE
    ) -> None:
        self._sink = sink
        self._delay, self._size = delay, size
        self._open: _Batch | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(
        self, readings: Sequence[Reading], rejects: Sequence[QuarantineRecord] = ()
    ) -> asyncio.Future[None]:
        """Put ``readings`` and ``rejects`` in the open batch; its future."""
        batch = self._open
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self._open = _Batch(loop.create_future())
            batch.future.add_done_callback(_observe)
            self._timer = loop.call_later(self._delay, self.flush)
        batch.readings += readings
        batch.rejects += rejects
        if len(batch.readings) + len(batch.rejects) >= self._size:
            self.flush()
        return batch.future

    def flush(self) -> None:
        """Submit the open batch now (nothing if none is open)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._open = self._open, None
        if batch is None:
            return
        task = asyncio.get_running_loop().create_task(self._send(batch), name="handoff-submit")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: _Batch) -> None:
        try:
            await self._sink.submit(batch.readings, rejects=batch.rejects)
        except asyncio.CancelledError:
            batch.future.cancel()
            raise
        except Exception as exc:  # the spool full, the sink closed: the waiters hear of it
            batch.future.set_exception(exc)
        else:
            batch.future.set_result(None)

    async def drain(self) -> None:
        """Submit the open batch and wait until no batch is under way."""
        self.flush()
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

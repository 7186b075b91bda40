"""Parsed messages -> `IngestSink.submit`: transient failures retried, poison retired.

A submit failing for want of a database, spool room or queue space is retried with back-off
for as long as it takes (the messages stay unacknowledged). Any other failure is permanent
(`collectors.mqtt.poison`): each message of the commit is then submitted alone and, after
``poison_attempts`` failures, quarantined as ``submit_failed`` and counted as settled, so
the acks behind it (acks leave in arrival order) are not held up for ever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from collectors.mqtt import metrics
from collectors.mqtt.acks import Delivery
from collectors.mqtt.payload import ParsedPayload, raw_text, source_of
from collectors.mqtt.poison import is_transient, poison_record
from collectors.mqtt.topics import gateway_of
from ingest.errors import SinkClosedError
from ingest.outcome import SubmitResult
from ingest.sink import IngestSink
from meterhub.logs import get_logger

log = get_logger(__name__)

_MAX_BACKOFF = 30.0


@dataclass(slots=True)
class WorkerStats:
    """What one worker has seen: ``received`` messages end as ``acked``, ``stale`` (their
    connection was lost first) or ``unacked`` (shutdown, sink closed); both are redelivered.
    ``quarantined`` counts whole messages (``poisoned`` those whose submit kept failing),
    ``rejected_elements`` single reading elements."""

    received: int = 0
    acked: int = 0
    stale: int = 0
    unacked: int = 0
    quarantined: int = 0
    poisoned: int = 0
    rejected_elements: int = 0
    readings: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    spooled_messages: int = 0
    submit_failures: int = 0


class Committer:
    """Hand parsed messages to ``sink``; counts go to ``stats``, ``progress`` is set on
    each attempt (for waiters).

    Example::

        committer = Committer(sink, stats, poison_attempts=3, progress=asyncio.Event())
        await committer.commit(deliveries, parsed)  # durable (or quarantined) on return
    """

    def __init__(
        self,
        sink: IngestSink,
        stats: WorkerStats,
        *,
        poison_attempts: int,
        progress: asyncio.Event,
    ) -> None:
        if poison_attempts < 1:
            raise ValueError("poison_attempts must be at least 1")
        self._sink = sink
        self._stats = stats
        self._poison_attempts = poison_attempts
        self._progress = progress
        self._submit_failing = False

    async def commit(self, deliveries: list[Delivery], parsed: list[ParsedPayload]) -> None:
        """Make ``parsed`` (of ``deliveries``) durable; returns once it is, a poison message
        quarantined instead. Raises `SinkClosedError` (nothing of it is then settled)."""
        try:
            result = await self._submit(parsed)
        except SinkClosedError:
            raise
        except Exception as exc:  # permanent (transient ones are retried in _submit)
            await self._isolate(deliveries, parsed, exc)
        else:
            self._count(parsed, result)

    async def _submit(self, parsed: list[ParsedPayload]) -> SubmitResult:
        """Submit the readings and quarantine records of ``parsed``; transient failures are
        retried with back-off (logged once at ERROR, then at DEBUG), others raised."""
        readings = [reading for p in parsed for reading in p.readings]
        rejects = [record for p in parsed for record in p.rejects]
        delay = 0.5
        while True:
            try:
                result = await self._sink.submit(readings, rejects=rejects)
            except SinkClosedError:
                raise
            except Exception as exc:
                self._stats.submit_failures += 1
                metrics.SUBMIT_FAILURES.inc()
                self._progress.set()
                if not is_transient(exc):
                    raise
                level = log.debug if self._submit_failing else log.error
                level("ingest submit failed; retrying", error=repr(exc), delay=delay)
                self._submit_failing = True
            else:
                if self._submit_failing:
                    self._submit_failing = False
                    log.info("ingest submit works again")
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _isolate(
        self, deliveries: list[Delivery], parsed: list[ParsedPayload], error: Exception
    ) -> None:
        """A submit of ``deliveries`` failed with the permanent ``error``: submit each alone,
        in order, so that only the message it comes from ends in quarantine."""
        failures = 0
        if len(deliveries) == 1:
            failures = 1
            self._log_failure(deliveries[0], error, failures)
        for delivery, one in zip(deliveries, parsed, strict=True):
            await self._commit_alone(delivery, one, failures=failures, error=error)

    async def _commit_alone(
        self, delivery: Delivery, one: ParsedPayload, *, failures: int, error: Exception
    ) -> None:
        delay = 0.5
        while failures < self._poison_attempts:
            if failures:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            try:
                result = await self._submit([one])
            except SinkClosedError:
                raise
            except Exception as exc:
                failures, error = failures + 1, exc
                self._log_failure(delivery, exc, failures)
            else:
                self._count([one], result)
                return
        await self._quarantine_poison(delivery, error, failures)

    def _log_failure(self, delivery: Delivery, error: Exception, failures: int) -> None:
        """A message's first permanent failure at ERROR, the next ones at DEBUG."""
        level = log.error if failures == 1 else log.debug
        level(
            "ingest submit of an mqtt message failed; retrying it alone",
            topic=delivery.topic,
            error=repr(error),
            failures=failures,
            quarantined_after=self._poison_attempts,
        )

    async def _quarantine_poison(self, delivery: Delivery, error: Exception, failures: int) -> None:
        gateway_id = gateway_of(delivery.topic)
        record = poison_record(
            source=source_of(gateway_id) if gateway_id is not None else "mqtt",
            payload=raw_text(delivery.payload),
            error=error,
            attempts=failures,
        )
        retired = ParsedPayload(rejects=[record], rejected_whole=True)
        self._count([retired], await self._submit([retired]))
        self._stats.poisoned += 1
        log.debug("mqtt message quarantined", topic=delivery.topic, detail=record.detail)

    def _count(self, parsed: list[ParsedPayload], result: SubmitResult) -> None:
        stats = self._stats
        for p in parsed:
            stats.readings += len(p.readings)
            if p.rejected_whole:
                stats.quarantined += 1
                metrics.QUARANTINED_MESSAGES.labels(str(p.rejects[0].reason)).inc()
                continue
            stats.rejected_elements += len(p.rejects)
            for record in p.rejects:
                metrics.QUARANTINED_ELEMENTS.labels(str(record.reason)).inc()
        if result.spooled:
            stats.spooled_messages += len(parsed)
        stats.accepted += result.accepted
        stats.duplicates += result.duplicates
        stats.conflicts += result.conflicts

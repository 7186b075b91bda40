"""A message whose submit keeps failing (not for want of a database or spool room) is
quarantined with its payload and reason after MHUB_MQTT_POISON_ATTEMPTS failures and
acknowledged, so the acks behind it go out; a transient failure is only ever retried."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest
import structlog

from ingest.errors import SpoolFullError
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord, Reason
from ingest.sink import IngestSink
from meterhub.reading import Reading
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import T0, WorkerFactory, create_mqtt_meters, stored

pytestmark = pytest.mark.integration

STEP = timedelta(minutes=15)
POISON_AT = T0 + 10 * STEP  # the 11th message of the stream


class FaultySink(IngestSink):
    """The real sink, except that a submit holding a reading at ``poison_ts`` raises
    ``error()`` (the first ``times`` times, or always)."""

    def __init__(
        self,
        settings: Settings,
        *,
        poison_ts: datetime,
        error: Callable[[], Exception],
        times: int | None = None,
    ) -> None:
        super().__init__(settings)
        self.raised = 0
        self._poison_ts = poison_ts
        self._error = error
        self._times = times

    async def submit(
        self, readings: Sequence[Reading], *, rejects: Sequence[QuarantineRecord] = ()
    ) -> SubmitResult:
        poisoned = any(reading.ts == self._poison_ts for reading in readings)
        if poisoned and (self._times is None or self.raised < self._times):
            self.raised += 1
            raise self._error()
        return await super().submit(readings, rejects=rejects)


async def test_a_poison_message_is_quarantined_and_the_stream_goes_on(
    db: asyncpg.Connection,
    mqtt_settings: Settings,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    messages = 30
    attempts = mqtt_settings.mqtt_poison_attempts
    sink = FaultySink(
        mqtt_settings, poison_ts=POISON_AT, error=lambda: ValueError("cannot encode this")
    )
    with structlog.testing.capture_logs() as logs:
        async with sink, worker_factory(sink) as worker:
            await gateway.publish_stream(T0, messages=messages)
            await worker.wait_until(lambda s: s.acked == messages, timeout=30)
            stats = worker.stats
    assert stats.poisoned == stats.quarantined == 1
    assert stats.submit_failures == sink.raised >= attempts
    rows = await stored(db, meters.values())
    assert len(rows) == (messages - 1) * len(gateway.channels)
    assert POISON_AT not in {row["ts"] for row in rows}

    (kept,) = await db.fetch(
        "SELECT reason, detail, payload FROM quarantine WHERE source = $1", f"mqtt:{gateway_id}"
    )
    assert kept["reason"] == Reason.SUBMIT_FAILED
    assert (
        f"{attempts} times" in kept["detail"] and "ValueError: cannot encode this" in kept["detail"]
    )
    message = orjson.loads(kept["payload"])  # the message as received
    assert message["gateway"] == gateway_id
    assert {datetime.fromisoformat(e["ts"]) for e in message["readings"]} == {POISON_AT}
    assert sorted(e["channel"] for e in message["readings"]) == sorted(gateway.channels)

    event = "ingest submit of an mqtt message failed; retrying it alone"
    failures = [e["log_level"] for e in logs if e["event"] == event]
    assert failures == ["error"] + ["debug"] * (attempts - 1)


async def test_a_transient_failure_is_retried_not_quarantined(
    db: asyncpg.Connection,
    mqtt_settings: Settings,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    """With a single permanent failure allowed, a spool-full error repeated still waits."""
    settings = mqtt_settings.model_copy(update={"mqtt_poison_attempts": 1})
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    messages, transient = 20, 2
    sink = FaultySink(
        settings, poison_ts=POISON_AT, error=lambda: SpoolFullError("full"), times=transient
    )
    async with sink, worker_factory(sink, settings=settings) as worker:
        await gateway.publish_stream(T0, messages=messages)
        await worker.wait_until(lambda s: s.acked == messages, timeout=30)
        stats = worker.stats
    assert sink.raised == stats.submit_failures == transient
    assert stats.poisoned == stats.quarantined == 0
    assert len(await stored(db, meters.values())) == messages * len(gateway.channels)
    quarantined = "SELECT count(*) FROM quarantine WHERE source = $1"
    assert await db.fetchval(quarantined, f"mqtt:{gateway_id}") == 0

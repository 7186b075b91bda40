"""The MQTT ingest worker: gateway messages -> `IngestSink`, acknowledged once durable."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections.abc import Callable
from types import TracebackType

from collectors.mqtt import metrics
from collectors.mqtt.acks import AckWindow, Delivery, Slot
from collectors.mqtt.bridge import MqttBridge
from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.committer import Committer, WorkerStats
from collectors.mqtt.errors import MqttError, ResolverUnavailableError
from collectors.mqtt.payload import ParsedPayload, parse_payload, raw_text
from collectors.mqtt.resolver import ChannelMap, MeterResolver
from collectors.mqtt.topics import gateway_of, shared_filter
from ingest.errors import SinkClosedError
from ingest.quarantine import QuarantineRecord, Reason
from ingest.sink import IngestSink
from meterhub.logs import get_logger
from meterhub.settings import Settings
from meterhub.supervise import Supervisor

__all__ = ["MqttIngestWorker", "WorkerStats", "default_client_id"]

log = get_logger(__name__)

#: A commit takes at most this many messages, or this many payload bytes, at once.
_GROUP_MESSAGES = 256
_GROUP_BYTES = 4 << 20
_MAX_BACKOFF = 30.0


#: Topics seen -> their gateway ids (a topic's gateway id never changes).
_gateway_of = functools.lru_cache(maxsize=65_536)(gateway_of)


def _wrong_topic(delivery: Delivery) -> ParsedPayload:
    detail = f"topic {delivery.topic!r} is not meterhub/v1/<gateway>/readings"
    record = QuarantineRecord("mqtt", Reason.MALFORMED_PAYLOAD, detail, raw_text(delivery.payload))
    return ParsedPayload(rejects=[record], rejected_whole=True)


def default_client_id(group: str) -> str:
    """A client id that is the same on every restart of this host's worker of ``group``."""
    return f"meterhub-{group}-{socket.gethostname()}"


class MqttIngestWorker:
    """Consume ``$share/{group}/meterhub/v1/{gateways}/readings`` into ``sink``.

    Each message is parsed (`collectors.mqtt.payload`), handed to ``sink.submit`` with its
    quarantine records and acknowledged to the broker only after ``submit`` returned, in
    arrival order. A submit failing for want of a database or spool room is retried, the
    message unacknowledged, for as long as it takes; one failing otherwise is retried
    alone and, after ``settings.mqtt_poison_attempts`` failures, quarantined as
    ``submit_failed`` (raw payload and error kept) and acknowledged. Keep
    ``client_id`` stable across restarts: the broker keeps the session (and the messages
    meant for it) for ``session_expiry`` seconds. ``end_session`` on close is for
    decommissioning a worker: unsubscribe, drain, and let the broker forget the session.

    Example::

        async with IngestSink(settings) as sink, MqttIngestWorker(settings, sink) as worker:
            await stop_requested.wait()
    """

    def __init__(
        self,
        settings: Settings,
        sink: IngestSink,
        *,
        group: str = "ingest",
        client_id: str | None = None,
        gateways: str = "+",
        receive_maximum: int = 10_000,
        session_expiry: int = 86_400,
        end_session: bool = False,
        connect_timeout: float = 30.0,
        drain_timeout: float = 30.0,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.client_id = client_id or default_client_id(group)
        self._supervisor = supervisor or Supervisor()
        self.stats = WorkerStats()
        self._sink = sink
        self._bridge = MqttBridge(
            BrokerAddress.from_url(settings.mqtt()),
            client_id=self.client_id,
            topic_filter=shared_filter(group, gateways),
            receive_maximum=receive_maximum,
            session_expiry=session_expiry,
        )
        self._resolver = MeterResolver(settings.dsn())
        self._window = AckWindow()
        self._end_session = end_session
        self._connect_timeout = connect_timeout
        self._drain_timeout = drain_timeout
        self._consumer: asyncio.Task[None] | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Event()
        self._committer = Committer(
            sink,
            self.stats,
            poison_attempts=settings.mqtt_poison_attempts,
            progress=self._progress,
        )
        self._last_delivery = 0.0
        self._closed = False

    async def __aenter__(self) -> MqttIngestWorker:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connections(self) -> int:
        """Successful broker connections so far (1 + reconnections)."""
        return self._bridge.connections

    @property
    def subscriptions(self) -> int:
        """Subscriptions granted so far: one per connection (renewed on each)."""
        return self._bridge.subscriptions

    async def start(self) -> None:
        """Connect and subscribe (`MqttError` if the broker is away or refuses) and consume;
        a resumed session may deliver before the subscription is confirmed."""
        # A crashed consumer leaves slots of the ack window open that nothing would settle,
        # blocking every later ack: not restartable (the process exits, the broker
        # redelivers what was not acknowledged).
        self._consumer = self._supervisor.start(
            f"mqtt-consumer-{self.client_id}", self._consume, restart=False, label="mqtt-consumer"
        )
        try:
            await self._bridge.start(timeout=self._connect_timeout)
        except MqttError:
            self._closed = True
            await self._drain()
            await self._resolver.close()
            raise

    async def close(self) -> None:
        """Stop taking messages, commit and acknowledge those taken (for up to
        ``drain_timeout`` s; the rest is redelivered later), then disconnect."""
        if self._closed:
            return
        self._closed = True
        if self._end_session:
            with contextlib.suppress(TimeoutError, MqttError):
                await self._bridge.unsubscribe()
            await self._wait_quiet(quiet=1.0)
        self._bridge.close_inbox()
        await self._drain()
        await self._bridge.stop(end_session=self._end_session)
        await self._resolver.close()
        log.info("mqtt worker stopped", client_id=self.client_id, stats=str(self.stats))

    async def _drain(self) -> None:
        """Let the consumer finish the inbox and the commits settle (cancelled after
        ``drain_timeout`` s: their messages stay unacknowledged)."""
        if self._consumer is not None:
            await asyncio.gather(self._consumer, return_exceptions=True)
        if self._commits:
            _, pending = await asyncio.wait(self._commits, timeout=self._drain_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def wait_until(self, condition: Callable[[WorkerStats], bool], *, timeout: float) -> None:
        """Wait until ``condition(self.stats)`` holds; `TimeoutError` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while not condition(self.stats):
                self._progress.clear()
                await self._progress.wait()

    # -- consuming -------------------------------------------------------------------------

    async def _consume(self) -> None:
        while deliveries := await self._bridge.deliveries(_GROUP_MESSAGES):
            self._last_delivery = time.monotonic()
            self.stats.received += len(deliveries)
            slots: list[Slot] = []
            size = 0
            for delivery in deliveries:
                slots.append(self._window.open(delivery))
                size += len(delivery.payload)
                if size >= _GROUP_BYTES:
                    self._spawn(slots)
                    slots, size = [], 0
            if slots:
                self._spawn(slots)
            self._progress.set()

    def _spawn(self, slots: list[Slot]) -> None:
        task = asyncio.create_task(self._commit(slots))
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)

    async def _commit(self, slots: list[Slot]) -> None:
        durable = False
        try:
            deliveries = [slot.delivery for slot in slots]
            parsed = await self._parse(deliveries)
            await self._committer.commit(deliveries, parsed)
            durable = True
        except SinkClosedError:
            log.warning("ingest sink closed; messages left for redelivery", messages=len(slots))
        except Exception:
            log.exception("mqtt commit failed; messages left for redelivery", messages=len(slots))
        finally:
            self._settle(slots, durable=durable)
            self._progress.set()

    async def _parse(self, deliveries: list[Delivery]) -> list[ParsedPayload]:
        """Parse each delivery; channel maps are looked up once per gateway and group."""
        maps: dict[str, ChannelMap] = {}
        parsed: list[ParsedPayload] = []
        for delivery in deliveries:
            gateway_id = _gateway_of(delivery.topic)
            if gateway_id is None:
                parsed.append(_wrong_topic(delivery))
                continue
            if gateway_id not in maps:
                maps[gateway_id] = await self._channels(gateway_id)
            payload = delivery.payload
            one = parse_payload(payload, gateway_id=gateway_id, resolve=maps[gateway_id])
            if any(record.reason is Reason.UNKNOWN_METER for record in one.rejects):
                fresh = await self._resolver.retry_miss(gateway_id)
                if fresh is not None:
                    maps[gateway_id] = fresh
                    one = parse_payload(payload, gateway_id=gateway_id, resolve=fresh)
            metrics.READINGS_PER_MESSAGE.observe(one.elements)
            parsed.append(one)
        return parsed

    async def _channels(self, gateway_id: str) -> ChannelMap:
        delay = 0.5
        while True:
            try:
                return await self._resolver.channel_map(gateway_id)
            except ResolverUnavailableError as exc:
                log.error("cannot map channels to meters; retrying", error=str(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def _settle(self, slots: list[Slot], *, durable: bool) -> None:
        """Settle ``slots``; ack (or release) what is now at the head of the window."""
        ready = self._window.settle(slots, durable=durable)
        if not ready:
            return
        stats = self.stats
        done = [slot.delivery for slot in ready if slot.durable]
        unacked = len(ready) - len(done)
        if unacked:
            self._bridge.release(unacked)
            stats.unacked += unacked
            metrics.UNACKED.inc(unacked)
        acked = self._bridge.ack(done)
        stale = len(done) - len(acked)
        if stale:
            stats.stale += stale
            metrics.STALE.inc(stale)
        if acked:
            stats.acked += len(acked)
            metrics.ACKED.inc(len(acked))
            now = time.monotonic()
            for delivery in acked:
                metrics.ACK_SECONDS.observe(now - delivery.received_at)

    async def _wait_quiet(self, *, quiet: float) -> None:
        """Wait until no message has arrived for ``quiet`` s (at most ``drain_timeout`` s)."""
        deadline = time.monotonic() + self._drain_timeout
        while (now := time.monotonic()) < deadline:
            idle = now - self._last_delivery
            if idle >= quiet and not self._commits:
                return
            await asyncio.sleep(min(quiet - idle, 0.1) if idle < quiet else 0.05)

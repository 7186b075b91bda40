"""A simulated MQTT gateway: v1 reading batches for its channels, QoS 1, MQTT 5.

Values come from a ``(channel, ts) -> {field: value}`` callable, so load-profile models can
drive it; the default, `linear_energy`, grows each channel's register at a constant power.
It can also publish raw (malformed) payloads and publish to any topic, for tests.

It keeps the gateway contract of ``docs/mqtt.md``: a message counts as delivered only on a
PUBACK with reason 0; reason 16 (no matching subscribers: the broker dropped it, e.g. right
after a restart, before the ingest workers subscribed again) means "not delivered", so the
message is kept and published again after ``retry_delay``; reason >= 128 means refused.
A connection lost while a message waits for its PUBACK is re-established by paho, which
sends the message again (DUP).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from collectors.errors import TransportError
from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import BrokerRefusedError, BrokerUnavailableError
from collectors.mqtt.payload import encode_payload
from collectors.mqtt.topics import readings_topic
from meterhub.reading import LOCAL_TZ

#: ``(channel, meter time) -> {value field: value}``, e.g. ``{"energy": 12.5, "power": 3.0}``.
ValueModel = Callable[[int, datetime], Mapping[str, float]]

_EPOCH = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
#: PUBACK reason code: the broker accepted the message but no subscription matched it,
#: so nobody will ever receive it (MQTT 5, 3.4.2.1). Not a failure code, yet not delivered.
NO_MATCHING_SUBSCRIBERS = 16


def linear_energy(channel: int, ts: datetime) -> dict[str, float]:
    """Constant power of ``2 + channel`` kW since 2025-01-01, on a register of 100 x channel."""
    power = 2.0 + channel
    hours = (ts - _EPOCH).total_seconds() / 3600
    return {"energy": round(100.0 * channel + power * hours, 2), "power": power}


class PublishRefusedError(TransportError):
    """The broker answered a PUBLISH with a failure reason code (e.g. 135 not authorised)."""

    code = "mqtt_publish_refused"

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        self.topic = topic
        self.reason_code = reason_code
        super().__init__(f"publish to {topic!r} refused: {reason} ({reason_code})")


class NotDeliveredError(TransportError):
    """A message was still answered "no matching subscribers" (16) after ``timeout`` s."""

    code = "mqtt_not_delivered"

    def __init__(self, topic: str, attempts: int, waited: float) -> None:
        self.topic = topic
        self.attempts = attempts
        super().__init__(
            f"publish to {topic!r} not delivered: no matching subscribers after "
            f"{attempts} attempts in {waited:.1f} s"
        )


@dataclass(slots=True)
class PublishStats:
    """Messages ``published`` (once each, however often sent), ``delivered`` (PUBACK 0),
    ``refused`` (PUBACK >= 128), and ``not_delivered`` PUBACKs 16 (each one resent)."""

    published: int = 0
    delivered: int = 0
    refused: int = 0
    not_delivered: int = 0


class MqttGatewaySimulator:
    """A gateway that logs in as ``gateway_id`` and publishes to its readings topic.

    Example::

        async with MqttGatewaySimulator("mqtt://127.0.0.1:18830", "gw-0001", "pw",
                                        channels=range(1, 9)) as gateway:
            await gateway.publish_stream(start, messages=96, steps=4)  # a day, 4 per message
    """

    def __init__(
        self,
        url: str,
        gateway_id: str,
        password: str,
        *,
        channels: Sequence[int] = tuple(range(1, 9)),
        values: ValueModel = linear_energy,
        interval: timedelta = timedelta(minutes=15),
        max_inflight: int = 100,
        timeout: float = 30.0,
        retry_delay: float = 0.5,
        client_id: str | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.topic = readings_topic(gateway_id)
        self.channels = tuple(channels)
        self._address = BrokerAddress.from_url(url).with_credentials(gateway_id, password)
        self._values = values
        self.interval = interval
        self._timeout = timeout
        self._retry_delay = retry_delay
        self.stats = PublishStats()
        self._window = asyncio.Semaphore(max_inflight)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"sim-{gateway_id}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(gateway_id, password)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.suppress_exceptions = True
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[ReasonCode] | None = None
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}

    async def __aenter__(self) -> MqttGatewaySimulator:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connected = self._loop.create_future()
        self._client.connect_async(self._address.host, self._address.port, keepalive=30)
        self._client.loop_start()
        try:
            async with asyncio.timeout(self._timeout):
                code = await self._connected
        except TimeoutError:
            await self.close()
            raise BrokerUnavailableError(f"gateway {self.gateway_id} could not connect") from None
        if code.is_failure:
            await self.close()
            raise BrokerRefusedError(code.value, str(code))

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def elements(self, start: datetime, *, steps: int = 1) -> list[dict[str, object]]:
        """Reading elements of every channel at ``start``, ``start + interval``, ... (``steps``)."""
        out: list[dict[str, object]] = []
        for step in range(steps):
            ts = start + step * self.interval
            for channel in self.channels:
                out.append({"channel": channel, "ts": ts, **self._values(channel, ts)})
        return out

    async def publish_readings(self, start: datetime, *, steps: int = 1) -> int:
        """Publish one message with ``steps`` time steps of every channel; waits for the
        PUBACK. Returns the number of reading elements."""
        elements = self.elements(start, steps=steps)
        await self.publish_elements(elements)
        return len(elements)

    async def publish_stream(self, start: datetime, *, messages: int, steps: int = 1) -> int:
        """Publish ``messages`` consecutive batches of ``steps`` time steps each, with up to
        ``max_inflight`` awaiting their PUBACK; returns the number of reading elements.
        A message answered 16 is published again; the first refused, unanswered or
        still undelivered (after ``timeout`` s) publish ends the stream with its error."""
        try:
            async with asyncio.TaskGroup() as group:
                for n in range(messages):
                    await self._window.acquire()
                    elements = self.elements(start + n * steps * self.interval, steps=steps)
                    group.create_task(self._publish_then_release(self._encode(elements)))
        except* (PublishRefusedError, NotDeliveredError, TimeoutError) as failed:
            raise failed.exceptions[0] from None
        return messages * steps * len(self.channels)

    async def publish_elements(self, elements: Sequence[Mapping[str, object]]) -> None:
        """Publish one v1 message with these elements (any content, valid or not)."""
        await self.publish_raw(self._encode(elements))

    async def publish_raw(self, payload: bytes, *, topic: str | None = None) -> None:
        """Publish ``payload`` as is at QoS 1 (to our readings topic unless ``topic``) and
        wait until it is delivered; `PublishRefusedError` if the broker refuses it,
        `NotDeliveredError` if no subscriber took it within ``timeout`` s."""
        await self._window.acquire()
        await self._publish_then_release(payload, topic or self.topic)

    def _encode(self, elements: Sequence[Mapping[str, object]]) -> bytes:
        return encode_payload(self.gateway_id, elements, sent_at=datetime.now(LOCAL_TZ))

    async def _publish_then_release(self, payload: bytes, topic: str | None = None) -> None:
        try:
            await self._deliver(payload, topic or self.topic)
        finally:
            self._window.release()

    async def _deliver(self, payload: bytes, topic: str) -> None:
        """Publish until a PUBACK says delivered (0) or refused (>= 128); each 16 is
        followed by ``retry_delay`` s and a new publish, for up to ``timeout`` s."""
        self.stats.published += 1
        loop = asyncio.get_running_loop()
        started, attempts = loop.time(), 0
        while True:
            attempts += 1
            info = self._client.publish(topic, payload, qos=1)
            done = self._acks[info.mid] = loop.create_future()
            try:
                async with asyncio.timeout(self._timeout):
                    code = await done
            finally:
                self._acks.pop(info.mid, None)
            if code.is_failure:
                self.stats.refused += 1
                raise PublishRefusedError(topic, code.value, str(code))
            if code.value != NO_MATCHING_SUBSCRIBERS:
                self.stats.delivered += 1
                return
            self.stats.not_delivered += 1
            waited = loop.time() - started
            if waited + self._retry_delay > self._timeout:
                raise NotDeliveredError(topic, attempts, waited)
            await asyncio.sleep(self._retry_delay)

    # -- network thread ------------------------------------------------------------------

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(callback, *args)

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._call(self._connected_with, rc)

    def _connected_with(self, rc: ReasonCode) -> None:
        if self._connected is not None and not self._connected.done():
            self._connected.set_result(rc)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Any) -> None:
        self._call(self._acked, mid, rc)

    def _acked(self, mid: int, rc: ReasonCode) -> None:
        done = self._acks.get(mid)
        if done is not None and not done.done():
            done.set_result(rc)

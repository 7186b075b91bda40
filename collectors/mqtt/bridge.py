"""A paho-mqtt client on its own network thread, seen from asyncio: deliveries in, acks out.

MQTT 5, clean start off, a session expiry, QoS 1 and manual acks: paho never acknowledges a
message by itself; `MqttBridge.ack` does, once the caller has made the message durable. At
most ``receive_maximum`` messages are unsettled at a time: the broker is told so (Receive
Maximum) and a semaphore holds the network thread if it sends more anyway. Acks of a
connection that has since been lost are dropped: the broker redelivers those messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collectors.mqtt import metrics
from collectors.mqtt.acks import Delivery
from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import (
    BrokerRefusedError,
    BrokerUnavailableError,
    MqttError,
    SubscriptionRefusedError,
)
from meterhub.logs import get_logger

log = get_logger(__name__)

#: MQTT packet ids are 16 bits: more unacknowledged messages than this cannot be told apart.
MAX_PACKET_IDS = 65_535
#: CONNACK codes that retrying will not cure: bad credentials, not authorised, banned ...
_FATAL_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
#: Unsubscribed from (never subscribed to) as a round trip before disconnecting.
_BARRIER_FILTER = "meterhub/v1/_barrier"


class MqttBridge:
    """Connect, subscribe to ``topic_filter`` at QoS 1, hand deliveries to asyncio.

    Example::

        bridge = MqttBridge(address, client_id="ingest-1",
                            topic_filter="$share/ingest/meterhub/v1/+/readings")
        await bridge.start(timeout=30)
        deliveries = await bridge.deliveries(100)
        ...  # make them durable, then
        bridge.ack(deliveries)
        await bridge.stop()
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        topic_filter: str,
        receive_maximum: int = 1_000,
        session_expiry: int = 86_400,
        keepalive: int = 30,
    ) -> None:
        if not 1 <= receive_maximum < MAX_PACKET_IDS:
            raise ValueError(f"receive_maximum must be in 1..{MAX_PACKET_IDS - 1}")
        self._address = address
        self._filter = topic_filter
        self._session_expiry = session_expiry
        self._receive_maximum = receive_maximum
        self._keepalive = keepalive
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set()
        client.reconnect_delay_set(1, 30)
        client.suppress_exceptions = True  # a bug in a callback must not end the network thread
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        self._client = client
        self._client_id = client_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = threading.BoundedSemaphore(receive_maximum)
        self._inbox: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._state_lock = threading.Lock()
        self._generation = 0
        self._connections = 0
        self._connected = False
        self._accepting = True
        self._closing = False
        self._started = asyncio.Event()
        self._unsubacks: dict[int, asyncio.Future[None]] = {}
        self._failure: MqttError | None = None

    @property
    def connections(self) -> int:
        """Successful connections so far (1 + reconnections)."""
        return self._connections

    # -- asyncio side ----------------------------------------------------------------------

    async def start(self, *, timeout: float = 30.0) -> None:
        """Connect and subscribe; `BrokerUnavailableError` if that takes over ``timeout`` s,
        `BrokerRefusedError` / `SubscriptionRefusedError` if the broker says no."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry
        props.ReceiveMaximum = self._receive_maximum
        host, port = self._address.host, self._address.port
        self._client.connect_async(host, port, self._keepalive, clean_start=False, properties=props)
        self._client.loop_start()
        try:
            async with asyncio.timeout(timeout):
                await self._started.wait()
        except TimeoutError:
            await self._halt(None)
            raise BrokerUnavailableError(
                f"no subscription at {host}:{port} in {timeout} s"
            ) from None
        if self._failure is not None:
            await self._halt(None)
            raise self._failure

    async def deliveries(self, max_items: int) -> list[Delivery]:
        """Up to ``max_items`` deliveries, waiting for the first; [] once closed and empty."""
        while True:
            if self._inbox:
                return [self._inbox.popleft() for _ in range(min(max_items, len(self._inbox)))]
            if not self._accepting:
                return []
            self._ready.clear()
            if not self._inbox:
                await self._ready.wait()

    def ack(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Acknowledge ``deliveries`` in order and free their slots; returns those acked:
        the others came in on a connection since lost (the broker will redeliver them)."""
        acked: list[Delivery] = []
        try:
            with self._state_lock:
                if self._connected:
                    generation = self._generation
                    acked = [d for d in deliveries if d.generation == generation]
                    for delivery in acked:
                        if delivery.qos > 0:
                            self._client.ack(delivery.mid, delivery.qos)
        finally:
            self.release(len(deliveries))
        return acked

    def release(self, count: int = 1) -> None:
        """Free ``count`` slots without acknowledging (the broker will redeliver)."""
        if count:
            self._slots.release(count)
            metrics.INFLIGHT.dec(count)

    async def unsubscribe(self, *, timeout: float = 10.0) -> None:
        """Leave the subscription (the share group gives this worker no new messages)."""
        await self._unsubscribe(self._filter, timeout)

    async def _unsubscribe(self, topic_filter: str, timeout: float) -> None:
        rc, mid = self._client.unsubscribe(topic_filter)
        if mid is None:
            raise BrokerUnavailableError(f"cannot unsubscribe: {mqtt.error_string(rc)}")
        done = self._unsubacks[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await done
        finally:
            self._unsubacks.pop(mid, None)

    def close_inbox(self) -> None:
        """Take no new deliveries: later ones stay unacknowledged and are redelivered."""
        self._accepting = False
        self._ready.set()

    async def stop(self, *, end_session: bool = False) -> None:
        """Disconnect after the acks queued so far; ``end_session`` discards the broker-side
        session (subscription and queued messages) instead of keeping it for a restart."""
        self.close_inbox()
        if self._connected:
            # A round trip first: the broker reads packets in order, so once it answers it
            # has read every PUBACK sent before. (Mosquitto drops the rest of a burst of
            # PUBACKs if the socket closes right after them: they would be redelivered.)
            with contextlib.suppress(TimeoutError, BrokerUnavailableError):
                await self._unsubscribe(_BARRIER_FILTER, timeout=5.0)
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        if end_session:
            props.SessionExpiryInterval = 0
        await self._halt(props)
        self.release(len(self._inbox))
        self._inbox.clear()

    async def _halt(self, props: Properties | None) -> None:
        self._closing = True
        self.close_inbox()
        self._client.disconnect(properties=props)
        await asyncio.to_thread(self._client.loop_stop)

    def _wake(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        self._ready.set()

    def _call(self, callback: Any, *args: Any) -> None:
        """Run ``callback`` on the event loop (from the network thread)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self._loop.call_soon_threadsafe(callback, *args)

    # -- network thread side ---------------------------------------------------------------

    def _fail(self, error: MqttError) -> None:
        if not self._started.is_set():
            self._failure = error
            self._closing = True
            self._call(self._started.set)
        log.error("mqtt broker said no", client_id=self._client_id, error=str(error))

    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            if rc.value in _FATAL_CONNACK:
                self._fail(BrokerRefusedError(rc.value, str(rc)))
            else:
                log.warning("mqtt connection refused; retrying", reason=str(rc))
            return
        with self._state_lock:
            self._generation += 1
            self._connections += 1
            self._connected = True
        metrics.CONNECTED.inc()
        metrics.CONNECTS.inc()
        present = bool(flags.session_present)
        log.info("mqtt connected", client_id=self._client_id, session_present=present)
        client.subscribe(self._filter, qos=1)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        code = codes[0]
        if code.is_failure or code.value != 1:
            self._fail(SubscriptionRefusedError(self._filter, code.value, str(code)))
            return
        log.info("mqtt subscribed", client_id=self._client_id, topic_filter=self._filter)
        self._call(self._started.set)

    def _on_unsubscribe(self, _c: mqtt.Client, _u: object, mid: int, *_: Any) -> None:
        self._call(self._unsubscribed, mid)

    def _unsubscribed(self, mid: int) -> None:
        done = self._unsubacks.get(mid)
        if done is not None and not done.done():
            done.set_result(None)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._state_lock:
            was_connected = self._connected
            self._connected = False
            self._generation += 1
        if was_connected:
            metrics.CONNECTED.dec()
        if not self._closing:
            log.warning("mqtt connection lost; reconnecting", reason=str(rc))

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self._closing:
                return
        metrics.INFLIGHT.inc()
        if not self._accepting:
            self.release()
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)
        payload = bytes(message.payload)
        now = time.monotonic()
        self._inbox.append(
            Delivery(message.mid, message.qos, topic, payload, self._generation, now)
        )
        metrics.RECEIVED.inc()
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._call(self._wake)

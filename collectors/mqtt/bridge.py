"""A paho-mqtt client driven by the asyncio event loop: deliveries in, acks out.

paho runs without a network thread, through its external-loop interface (``loop_read``,
``loop_write``, ``loop_misc`` and the socket callbacks): packets are read and written by
the event loop itself, so no lock, thread hop or GIL hand-over stands between a PUBLISH and
the code that stores it. Only the blocking TCP connect runs in a worker thread.

MQTT 5, clean start off, a session expiry, QoS 1 and manual acks: paho never acknowledges a
message by itself; `MqttBridge.ack` does, once the caller has made the message durable. At
most ``receive_maximum`` messages are unsettled at a time: the broker is told so (Receive
Maximum) and reading pauses if it sends more anyway. Acks of a connection that has since
been lost are dropped: the broker redelivers those messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
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
#: Packets read per readable event at most (then other tasks get their turn).
_READS_PER_WAKE = 64
#: Reconnection back-off, seconds (see `reconnect_delays`).
_RECONNECT_MIN, _RECONNECT_MAX = 0.25, 5.0


def reconnect_delays() -> Iterator[float]:
    """Seconds to wait before each connection attempt after a drop: none before the first
    (a broker restart takes well under a second, and until the shared subscription is
    renewed the broker drops what gateways publish, PUBACK 16), then 0.25, 0.5, ... 5.

    Example::

        list(itertools.islice(reconnect_delays(), 7))  # [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    """
    yield 0.0
    delay = _RECONNECT_MIN
    while True:
        yield delay
        delay = min(delay * 2, _RECONNECT_MAX)


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
        client.suppress_exceptions = True  # a bug in a callback must not end the read loop
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._client = client
        self._client_id = client_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sock: Any = None  # paho's socket while connected, else None
        self._attached = False  # its reader is registered with the event loop
        self._want_write = False
        self._lost = asyncio.Event()  # the socket closed
        self._runner: asyncio.Task[None] | None = None
        self._unsettled = 0
        self._paused = False  # reading stopped: ``receive_maximum`` messages unsettled
        self._received = 0
        self._inbox: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self._generation = 0
        self._connections = 0
        self._subscriptions = 0
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

    @property
    def subscriptions(self) -> int:
        """Subscriptions the broker granted so far (one per connection)."""
        return self._subscriptions

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
        self._loop_thread = threading.get_ident()
        self._runner = asyncio.create_task(self._run(), name=f"mqtt-{self._client_id}")
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
            self._unsettled -= count
            metrics.INFLIGHT.set(self._unsettled)
            if self._paused and self._unsettled < self._receive_maximum:
                self._paused = False
                self._attach()

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
        """Send DISCONNECT (written by the event loop, after the queued acks), wait for the
        socket to close, stop reconnecting."""
        self._closing = True
        self.close_inbox()
        if self._sock is not None:
            self._lost.clear()
            self._client.disconnect(properties=props)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._lost.wait()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._sock is not None:  # the broker never let go: drop the connection
            self._detach()
            self._sock.close()
            self._sock = None

    # -- connection upkeep -----------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, then keep the connection: keepalive pings, reconnection at once after a
        drop, then with back-off (`reconnect_delays`, restarted by each accepted connection)."""
        delays = reconnect_delays()
        while not self._closing:
            if self._sock is None:
                if delay := next(delays):
                    await asyncio.sleep(delay)
                try:
                    await asyncio.to_thread(self._client.reconnect)
                    self._attach()
                except (OSError, ssl.SSLError) as exc:
                    log.warning("mqtt broker unreachable; retrying", error=str(exc))
                    continue
                except Exception:  # a bug must not end reconnecting for good
                    log.exception("mqtt reconnect failed; retrying")
                    continue
            self._client.loop_misc()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._lost.wait()
            self._lost.clear()
            if self._connected:
                delays = reconnect_delays()

    def _attach(self) -> None:
        """Let the event loop read (unless paused) and, if paho has data queued, write."""
        loop, sock = self._loop, self._sock
        if loop is None or sock is None:
            return
        if not self._attached and not self._paused:
            loop.add_reader(sock, self._read)
            self._attached = True
        if self._want_write:
            loop.add_writer(sock, self._client.loop_write)

    def _stop_reading(self) -> None:
        if self._attached and self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock)
        self._attached = False

    def _detach(self) -> None:
        self._stop_reading()
        if self._loop is not None and self._sock is not None:
            self._loop.remove_writer(self._sock)

    def _read(self) -> None:
        """Read the packets that have arrived (up to a limit; the loop calls again)."""
        client, first = self._client, self._received
        try:
            for _ in range(_READS_PER_WAKE):
                received = self._received
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._sock is None:
                    return
                if self._received == received or self._paused:
                    break  # not a PUBLISH (or nothing): the loop calls again if more is there
        finally:  # metrics once per burst, not per message
            if self._received > first:
                metrics.RECEIVED.inc(self._received - first)
                metrics.INFLIGHT.set(self._unsettled)
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending() and self._loop is not None:
            self._loop.call_soon(self._read)  # decrypted bytes the selector cannot see

    def _in_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    # -- paho callbacks (on the event loop, but for the socket opened by `reconnect`) --------

    def _on_socket_open(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        self._sock = sock  # from `reconnect` in its thread: `_run` attaches it after

    def _on_socket_close(self, _c: mqtt.Client, _u: object, _sock: Any) -> None:
        if self._in_loop():
            self._detach()
        self._sock = None
        self._want_write = False
        self._lost.set()

    def _on_register_write(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        self._want_write = True
        if self._loop is not None and self._in_loop() and sock is self._sock:
            self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        self._want_write = False
        if self._loop is not None and self._in_loop():
            self._loop.remove_writer(sock)

    def _fail(self, error: MqttError) -> None:
        if not self._started.is_set():
            self._failure = error
            self._closing = True
            self._started.set()
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
        self._generation += 1
        self._connections += 1
        self._connected = True
        metrics.CONNECTED.inc()
        metrics.CONNECTS.inc()
        present = bool(flags.session_present)
        log.info("mqtt connected", client_id=self._client_id, session_present=present)
        # On every connection, resumed session or not: Mosquitto 2.0 restores a session after
        # a restart but not its shared subscription, and answers publishes to it with
        # PUBACK 16 (no matching subscribers) and drops them until we subscribe again.
        client.subscribe(self._filter, qos=1)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        code = codes[0]
        if code.is_failure or code.value != 1:
            self._fail(SubscriptionRefusedError(self._filter, code.value, str(code)))
            if not self._closing:  # refused on a reconnection: drop it and try again
                self._client.disconnect()
            return
        self._subscriptions += 1
        metrics.SUBSCRIBES.inc()
        log.info("mqtt subscribed", client_id=self._client_id, topic_filter=self._filter)
        self._started.set()

    def _on_unsubscribe(self, _c: mqtt.Client, _u: object, mid: int, *_: Any) -> None:
        done = self._unsubacks.get(mid)
        if done is not None and not done.done():
            done.set_result(None)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: Any, rc: ReasonCode, _p: Any) -> None:
        was_connected = self._connected
        self._connected = False
        self._generation += 1
        if was_connected:
            metrics.CONNECTED.dec()
        if not self._closing:
            log.warning("mqtt connection lost; reconnecting", reason=str(rc))

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self._received += 1
        self._unsettled += 1
        if self._unsettled >= self._receive_maximum and not self._paused:
            self._paused = True  # the broker should not send more; if it does, stop reading
            self._stop_reading()
        if not self._accepting:
            self.release()
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)
        self._inbox.append(
            Delivery(
                message.mid,
                message.qos,
                topic,
                bytes(message.payload),
                self._generation,
                time.monotonic(),
            )
        )
        self._ready.set()

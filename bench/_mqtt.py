"""The collector benchmark's MQTT phase: a backlog of QoS 1 messages drained by a plain
paho subscriber (the broker's own rate) and by `MqttIngestWorker` into the database."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.progress import Progress, TaskID

from bench._processes import Usage
from bench._registry import Row, console, count_rows, register
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ
from meterhub.runtime import tune_gc
from meterhub.settings import PROJECT_ROOT, Settings

GATEWAY = "mhbench-gw"


class PlainSubscriber:
    """A bare paho client (MQTT 5, QoS 1, paho acks each message as it arrives) that only
    counts: what the broker delivers when nothing downstream holds it back."""

    def __init__(self, url: str, *, client_id: str, topic: str, receive_maximum: int) -> None:
        from collectors.mqtt.broker import BrokerAddress

        self._broker = BrokerAddress.from_url(url)
        self._client_id, self._topic, self._receive_maximum = client_id, topic, receive_maximum
        self.received = self._expected = 0
        self._done_at = 0.0
        self._done, self._connected, self._subscribed = (threading.Event() for _ in range(3))
        self._failure = ""

    async def _connect(self, *, clean_start: bool, expiry: int) -> Any:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        props.ReceiveMaximum = self._receive_maximum
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(self._broker.username, self._broker.password)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        self._connected.clear()
        host, port = self._broker.host, self._broker.port
        client.connect_async(host, port, keepalive=30, clean_start=clean_start, properties=props)
        client.loop_start()
        if not await asyncio.to_thread(self._connected.wait, 30) or self._failure:
            await self._disconnect(client)
            raise SystemExit(f"plain subscriber could not connect: {self._failure or 'timeout'}")
        return client

    @staticmethod
    async def _disconnect(client: Any) -> None:
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._failure = str(rc) if rc.is_failure else ""
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, _m: Any) -> None:
        self.received += 1
        if self.received == self._expected:
            self._done_at = time.perf_counter()
            self._done.set()

    async def open_session(self) -> None:
        """Subscribe and leave: the broker queues what is published from now on."""
        client = await self._connect(clean_start=True, expiry=600)
        self._subscribed.clear()
        client.subscribe(self._topic, qos=1)
        subscribed = await asyncio.to_thread(self._subscribed.wait, 30)
        await self._disconnect(client)
        if not subscribed:
            raise SystemExit("plain subscriber: no SUBACK")

    async def drain(self, expected: int, *, timeout: float) -> float:
        """Reconnect and take ``expected`` queued messages; messages/s from the connect."""
        self.received, self._expected = 0, expected
        self._done.clear()
        started = time.perf_counter()
        client = await self._connect(clean_start=False, expiry=600)
        try:
            if not await asyncio.to_thread(self._done.wait, timeout):
                raise SystemExit(f"plain subscriber got {self.received} of {expected} messages")
        finally:
            await self._disconnect(client)
        return expected / (self._done_at - started)

    async def end_session(self) -> None:
        await self._disconnect(await self._connect(clean_start=True, expiry=0))


@dataclass
class MqttFigures:
    messages: int
    channels: int
    publish_rate: float
    broker_rate: float
    ingest_rate: float
    broker_usage: Usage
    ingest_usage: Usage
    stored: int = 0

    @property
    def ratio(self) -> float:
        return self.ingest_rate / self.broker_rate

    @property
    def verified(self) -> bool:
        return self.stored == self.messages * self.channels


async def follow(
    progress: Progress, bar: TaskID, count: Callable[[], int], until: asyncio.Future[Any]
) -> Any:
    while not until.done():
        progress.update(bar, completed=count())
        await asyncio.sleep(0.2)
    return await until


async def publish_backlog(broker: str, *, messages: int, channels: int) -> float:
    """Publish ``messages`` (one minute of every channel each, ending an hour ago) as the
    bench gateway, creating its broker user on first use; returns messages/s."""
    from collectors.mqtt.errors import BrokerRefusedError
    from simulators.mqtt_gateway import MqttGatewaySimulator

    password = f"pw-{GATEWAY}"
    gateway = partial(
        MqttGatewaySimulator,
        broker,
        GATEWAY,
        password,
        channels=range(1, channels + 1),
        interval=timedelta(minutes=1),
        max_inflight=500,
    )
    publisher = gateway()
    try:
        await publisher.connect()
    except BrokerRefusedError:  # first run against this broker
        services = str(PROJECT_ROOT / "deploy" / "services.sh")
        command = ["bash", services, "mqtt-user", GATEWAY, password]
        await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
        publisher = gateway()
        await publisher.connect()
    start = datetime.now(LOCAL_TZ).replace(second=0, microsecond=0)
    start -= timedelta(minutes=messages + 60)
    with console.status(f"publishing {messages:,} messages"):
        began = time.perf_counter()
        try:
            await publisher.publish_stream(start, messages=messages)
        finally:
            await publisher.close()
        return messages / (time.perf_counter() - began)


async def mqtt_phase(settings: Settings, dsn: str, args: argparse.Namespace) -> MqttFigures | None:
    try:
        from collectors.mqtt.broker import BrokerAddress
        from collectors.mqtt.topics import readings_topic
        from collectors.mqtt.worker import MqttIngestWorker
    except ImportError as exc:
        console.print(f"[yellow]MQTT phase skipped: the MQTT worker does not import ({exc})")
        return None
    messages, channels = args.mqtt_messages, args.mqtt_channels
    tune_gc()  # as `meterhub ingest-mqtt` does at start-up (both consumers run after it)
    rows: list[Row] = [
        ({"gateway_id": GATEWAY, "channel": c}, None) for c in range(1, channels + 1)
    ]
    await register(dsn, protocol="mqtt", rows=rows)
    run = uuid.uuid4().hex[:8]
    plain = PlainSubscriber(
        settings.mqtt(),
        client_id=f"mhbench-plain-{run}",
        topic=readings_topic(GATEWAY),
        receive_maximum=10_000,  # the worker's default window: the same for both
    )
    worker = partial(
        MqttIngestWorker,
        settings,
        group=f"mhbench{run}",
        client_id=f"mhbench-worker-{run}",
        gateways=GATEWAY,
        session_expiry=600,
    )
    broker = BrokerAddress.from_url(settings.mqtt())
    timeout = 120 + messages / 50
    await plain.open_session()
    async with IngestSink(settings) as sink:
        async with worker(sink):
            pass  # the worker's session and subscription exist: the broker queues for both
        rate = await publish_backlog(
            f"mqtt://{broker.host}:{broker.port}", messages=messages, channels=channels
        )
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("(a) plain subscriber", total=messages)
            async with Usage() as broker_usage:
                drained = asyncio.ensure_future(plain.drain(messages, timeout=timeout))
                broker_rate = await follow(progress, bar, lambda: plain.received, drained)
            bar = progress.add_task("(b) MqttIngestWorker -> database", total=messages)
            async with Usage() as ingest_usage:
                began = time.perf_counter()
                ingest = worker(sink, end_session=True)
                await ingest.start()
                try:
                    acked = ingest.wait_until(lambda s: s.acked >= messages, timeout=timeout)
                    done = asyncio.ensure_future(acked)
                    await follow(progress, bar, lambda: ingest.stats.acked, done)
                    ingest_rate = messages / (time.perf_counter() - began)
                finally:
                    await ingest.close()
    await plain.end_session()
    figures = MqttFigures(
        messages, channels, rate, broker_rate, ingest_rate, broker_usage, ingest_usage
    )
    figures.stored = (await count_rows(dsn))[0]["mqtt"]
    return figures


def report_mqtt(f: MqttFigures) -> None:
    say = partial(console.print, highlight=False)
    say(
        f"[bold]mqtt[/] {f.messages:,} QoS 1 messages of {f.channels} readings, queued by the "
        f"broker for both consumers (published at {f.publish_rate:,.0f} msg/s)"
    )
    say(f"  (a) broker -> plain paho subscriber {f.broker_rate:>9,.0f} msg/s")
    say(f"      {f.broker_usage.describe()}")
    mark = "all stored" if f.verified else "[red]NOT all stored[/]"
    say(
        f"  (b) broker -> worker -> database    {f.ingest_rate:>9,.0f} msg/s = "
        f"{f.ingest_rate * f.channels:,.0f} readings/s ({f.stored:,} readings: {mark})"
    )
    say(f"      {f.ingest_usage.describe()}")
    say(f"  mqtt_ratio (b)/(a) = {f.ratio:.3f}")

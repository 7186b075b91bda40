"""The simulated gateway: its elements, its login, and what reaches a subscriber."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collectors.mqtt.broker import BrokerAddress
from collectors.mqtt.errors import BrokerRefusedError
from collectors.mqtt.payload import parse_payload
from collectors.mqtt.topics import readings_topic
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator, PublishRefusedError, linear_energy
from tests.collectors.mqtt.conftest import ensure_gateway_user

T0 = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)


@pytest.fixture
def broker_url(base_settings: Settings) -> str:
    address = BrokerAddress.from_url(base_settings.mqtt())
    return f"mqtt://{address.host}:{address.port}"


@pytest.fixture
def gateway_id(request: pytest.FixtureRequest) -> str:
    return f"mht-sim-{request.node.name.removeprefix('test_')[:20].replace('_', '-')}"


def test_elements_come_from_the_value_model() -> None:
    def flat(channel: int, ts: datetime) -> dict[str, float]:
        return {"power": float(channel), "voltage_a": 230.0}

    gateway = MqttGatewaySimulator(
        "mqtt://127.0.0.1:1",
        "gw-1",
        "pw",
        channels=[4, 7],
        values=flat,
        interval=timedelta(hours=1),
    )
    assert gateway.elements(T0, steps=2) == [
        {"channel": 4, "ts": T0, "power": 4.0, "voltage_a": 230.0},
        {"channel": 7, "ts": T0, "power": 7.0, "voltage_a": 230.0},
        {"channel": 4, "ts": T0 + timedelta(hours=1), "power": 4.0, "voltage_a": 230.0},
        {"channel": 7, "ts": T0 + timedelta(hours=1), "power": 7.0, "voltage_a": 230.0},
    ]


def test_linear_energy_grows_at_its_power() -> None:
    first, later = linear_energy(3, T0), linear_energy(3, T0 + timedelta(hours=2))
    assert first["power"] == later["power"] == 5.0
    assert later["energy"] - first["energy"] == pytest.approx(10.0)


class Listener:
    """A plain (non-shared) QoS 1 subscriber with the ingest user's rights."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.address = BrokerAddress.from_url(settings.mqtt())
        self.topic = topic
        self.payloads: list[bytes] = []
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(self.address.username, self.address.password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_subscribe(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.subscribed.set)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        self.loop.call_soon_threadsafe(self._add, bytes(message.payload))

    def _add(self, payload: bytes) -> None:
        self.payloads.append(payload)
        self.changed.set()

    async def __aenter__(self) -> Listener:
        self.client.connect_async(self.address.host, self.address.port)
        self.client.loop_start()
        await asyncio.wait_for(self.subscribed.wait(), 20)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    async def wait_for(self, count: int, *, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.payloads) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.mark.integration
async def test_published_batches_reach_a_subscriber_intact(
    base_settings: Settings, broker_url: str, gateway_id: str
) -> None:
    password = ensure_gateway_user(gateway_id)
    async with (
        Listener(base_settings, readings_topic(gateway_id)) as listener,
        MqttGatewaySimulator(broker_url, gateway_id, password, channels=[1, 2, 3]) as gateway,
    ):
        assert await gateway.publish_stream(T0, messages=30, steps=4) == 30 * 4 * 3
        await listener.wait_for(30, timeout=30)
        with pytest.raises(PublishRefusedError) as refused:
            await gateway.publish_raw(b"{}", topic=readings_topic(f"{gateway_id}-other"))
        assert refused.value.reason_code == 0x87
    assert len(listener.payloads) == 30
    readings = [
        reading
        for payload in listener.payloads
        for reading in parse_payload(
            payload, gateway_id=gateway_id, resolve=lambda ch, ts: ch
        ).readings
    ]
    assert len(readings) == 360
    assert sorted((r.ts, r.meter_id) for r in readings) == [
        (T0 + timedelta(minutes=15 * k), ch) for k in range(120) for ch in (1, 2, 3)
    ]
    assert all(r.energy == linear_energy(r.meter_id, r.ts)["energy"] for r in readings)


@pytest.mark.integration
async def test_a_wrong_password_is_refused(broker_url: str, gateway_id: str) -> None:
    ensure_gateway_user(gateway_id)
    with pytest.raises(BrokerRefusedError) as refused:
        async with MqttGatewaySimulator(broker_url, gateway_id, "wrong password"):
            pass
    assert refused.value.reason_code in (0x86, 0x87)

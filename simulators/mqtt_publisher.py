"""A city's MQTT gateway: its channels' readings published in batches by `MqttGatewaySimulator`.

Each message carries every channel's reading at one tick (live) or at many ticks
(history). A channel whose meter has a ``no_answer`` fault at that tick is left out (a
gap); with ``late_answer`` its reading travels in the gateway's next message instead;
``garbage_values`` shows as an absurd value (NaN goes out as JSON null). Readings are
stamped with the meter's clock, so ``clock_drift`` shows too.

Gateways log in to the broker as their gateway id with `gateway_password`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from collectors.mqtt.broker import BrokerAddress
from meterhub.logs import get_logger
from meterhub.reading import VALUE_FIELDS
from simulators.config import MqttAddress
from simulators.fleet import CityFleet, answers, installed, misbehaviour
from simulators.meter import SimulatedMeter
from simulators.mqtt_gateway import MqttGatewaySimulator, PublishStats

Element = dict[str, object]
T = TypeVar("T")
log = get_logger(__name__)


def gateway_password(seed: int, gateway_id: str) -> str:
    """The broker password of simulated gateway ``gateway_id`` in a city seeded ``seed``.

    Derived, not stored: whoever has the city file can log in as its gateways, which is
    fine for a simulation and why real gateways get their own credentials.

    Example::

        gateway_password(42, "mqtt-0001")  # 'sim-4f0c...' (24 hex digits), same every time
    """
    digest = hashlib.blake2b(f"{seed}:mqtt-password:{gateway_id}".encode(), digest_size=12)
    return f"sim-{digest.hexdigest()}"


def broker_url(url: str) -> str:
    """``url`` without its credentials: simulated gateways log in as themselves.

    Example: ``broker_url("mqtt://ingest:pw@127.0.0.1:18830")`` is ``"mqtt://127.0.0.1:18830"``.
    """
    address = BrokerAddress.from_url(url)
    return f"{'mqtts' if address.tls else 'mqtt'}://{address.host}:{address.port}"


def _channel(meter: SimulatedMeter) -> int:
    address = meter.spec.address
    assert isinstance(address, MqttAddress)  # the city checked it
    return address.channel


def element(meter: SimulatedMeter, ts: datetime, *, faults: bool = True) -> Element:
    """The payload element of ``meter``'s channel at true time ``ts``."""
    reading = meter.snapshot(ts, faults=faults)
    values = {f: v for f in VALUE_FIELDS if (v := getattr(reading, f)) is not None}
    return {"channel": _channel(meter), "ts": reading.ts, **values}


class MqttPublisher:
    """Simulated MQTT gateway ``gateway_id`` of ``fleet``, logging in at broker ``url``
    (``mqtt://host:port``, no credentials: it uses its own).

    Example::

        async with MqttPublisher(fleet, "mqtt-0001", url="mqtt://127.0.0.1:18830") as gateway:
            await gateway.publish_at(tick)
    """

    def __init__(
        self, fleet: CityFleet, gateway_id: str, *, url: str, timeout: float = 30.0
    ) -> None:
        self.gateway_id = gateway_id
        self.meters = fleet.on(gateway_id)
        self.channels = [_channel(m) for m in self.meters]
        self.published = 0  # reading elements the broker acknowledged as delivered (PUBACK 0)
        self._late: list[Element] = []
        self._gateway = MqttGatewaySimulator(
            url,
            gateway_id,
            gateway_password(fleet.city.seed, gateway_id),
            channels=self.channels,
            timeout=timeout,
        )

    @property
    def topic(self) -> str:
        return self._gateway.topic

    @property
    def stats(self) -> PublishStats:
        """Messages published, delivered, refused; "no matching subscribers" answers, each
        followed by a retry (the gateway keeps the message: it was not delivered)."""
        return self._gateway.stats

    async def __aenter__(self) -> MqttPublisher:
        await self._gateway.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._gateway.close()

    def elements_at(self, ts: datetime) -> list[Element]:
        """This tick's elements, plus last tick's late ones; late ones of this tick wait."""
        now, self._late = self._late, []
        for meter in self.meters:
            if not installed(meter, ts):
                continue
            odd = misbehaviour(meter, ts)
            if odd.silent:
                continue
            (self._late if odd.delay else now).append(element(meter, ts))
        return now

    async def publish_at(self, ts: datetime) -> int:
        """Publish one message with every channel's reading at ``ts``; waits for the PUBACK.
        Returns the number of elements (0: nothing sent)."""
        elements = self.elements_at(ts)
        if elements:
            await self._gateway.publish_elements(elements)
            self.published += len(elements)
        log.debug(
            "mqtt gateway published", gateway=self.gateway_id, tick=ts, elements=len(elements)
        )
        return len(elements)

    async def publish_history(
        self,
        ticks: Sequence[datetime],
        *,
        per_message: int = 2000,
        faults: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Publish every channel's reading at each of ``ticks`` (oldest first), in messages
        of about ``per_message`` elements; ``no_answer`` leaves gaps unless ``faults`` is
        false. Calls ``progress(n)`` after each acknowledged message of n elements."""
        sent = 0
        for batch in batches(self._history(ticks, faults=faults), per_message):
            await self._gateway.publish_elements(batch)
            sent += len(batch)
            self.published += len(batch)
            if progress is not None:
                progress(len(batch))
        return sent

    def _history(self, ticks: Iterable[datetime], *, faults: bool) -> Iterable[Element]:
        for ts in ticks:
            for meter in self.meters:
                if answers(meter, ts, faults=faults):
                    yield element(meter, ts, faults=faults)


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

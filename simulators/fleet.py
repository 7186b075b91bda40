"""A city's simulated meters, found by where they answer, and how each request misbehaves.

Every protocol path (Modbus and DL/T 645 gateways, MQTT gateways, the grid feed) asks the
same `CityFleet` for its meters and the same `misbehaviour` for the faults in force, so a
fault configured once in the city file shows on whichever path the meter uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from meterhub.reading import LOCAL_TZ
from simulators.config import CityConfig, GridFeedAddress, Protocol
from simulators.errors import CityConfigError
from simulators.faults import CorruptChecksum, GatewayOffline, LateAnswer, NoAnswer
from simulators.meter import SimulatedMeter, build_meters

#: The simulation's wall clock: an aware datetime (tests inject a fixed one).
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The real time in Asia/Shanghai."""
    return datetime.now(LOCAL_TZ)


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    """What one request to a meter meets: silence, a late answer (s), a corrupt frame."""

    silent: bool = False
    delay: float = 0.0
    corrupt: bool = False


_WELL = Misbehaviour()


def installed(meter: SimulatedMeter, ts: datetime) -> bool:
    """Whether the metering point has a meter at ``ts`` (its first installation is done)."""
    return ts >= meter.installations[0].installed_at


def misbehaviour(meter: SimulatedMeter, ts: datetime) -> Misbehaviour:
    """The request faults of ``meter`` in force at ``ts``.

    Probabilistic faults draw once per whole second, so the several requests of one poll
    (and its quick retries) meet the same fate: a ``no_answer`` fault of probability 0.1
    fails about one poll in ten, not one request in ten.

    Example::

        if misbehaviour(meter, now).silent:
            return None  # the meter does not answer this poll
    """
    if not meter.spec.faults:
        return _WELL
    second = ts.replace(microsecond=0)
    faults = meter.faults
    if faults.active(NoAnswer, second) is not None:
        return Misbehaviour(silent=True)
    late = faults.active(LateAnswer, second)
    corrupt = faults.active(CorruptChecksum, second) is not None
    return Misbehaviour(delay=late.delay if late else 0.0, corrupt=corrupt)


def answers(meter: SimulatedMeter, ts: datetime, *, faults: bool = True) -> bool:
    """Whether ``meter`` gives a reading at ``ts``: it is installed and, when ``faults``,
    not silenced by a ``no_answer`` fault."""
    return installed(meter, ts) and not (faults and misbehaviour(meter, ts).silent)


class CityFleet:
    """The `SimulatedMeter` of every metering point of ``city``, indexed by gateway and feed.

    Example::

        fleet = CityFleet(load_city("city.toml"))
        for meter in fleet.on("dlt-001"):
            print(meter.spec.code, meter.snapshot(wall_clock()).energy)
    """

    def __init__(self, city: CityConfig) -> None:
        self.city = city
        self.meters = build_meters(city)
        self._by_gateway: dict[str, list[SimulatedMeter]] = defaultdict(list)
        self._by_feed: dict[str, list[SimulatedMeter]] = defaultdict(list)
        for meter in self.meters:
            address = meter.spec.address
            if isinstance(address, GridFeedAddress):
                self._by_feed[address.feed].append(meter)
            else:
                self._by_gateway[address.gateway].append(meter)

    def on(self, gateway_id: str) -> list[SimulatedMeter]:
        """The meters behind gateway ``gateway_id``, in file order."""
        return list(self._by_gateway.get(gateway_id, ()))

    def feed(self, feed_id: str) -> list[SimulatedMeter]:
        """The grid-feed meters of feed ``feed_id``, in file order."""
        return list(self._by_feed.get(feed_id, ()))

    @property
    def feeds(self) -> list[str]:
        """The grid feeds the city's meters are on."""
        return sorted(self._by_feed)

    def the_feed(self, feed_id: str | None = None) -> str | None:
        """``feed_id``, else the city's only feed (None: no grid-feed meters);
        `CityConfigError` when the city has several and none is named."""
        if feed_id is not None or not self._by_feed:
            return feed_id
        if len(self._by_feed) > 1:
            raise CityConfigError(f"the city has feeds {self.feeds}: name one")
        return self.feeds[0]

    def speaking(self, protocol: Protocol) -> list[SimulatedMeter]:
        """The meters that speak ``protocol``."""
        return [m for m in self.meters if m.spec.protocol == protocol]

    def gateway_offline(self, gateway_id: str, ts: datetime) -> bool:
        """Whether gateway ``gateway_id`` is in a ``gateway_offline`` window at ``ts``."""
        return self.city.gateway_faults(gateway_id).active(GatewayOffline, ts) is not None

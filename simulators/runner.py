"""A whole simulated city running in one process: every gateway of the city file, and its
grid feed, on the real clock (or an injected one) until stopped.

* one `ModbusMeterSimulator` per Modbus gateway (`simulators.city_modbus`);
* one `Dlt645GatewaySimulator` per DL/T 645 gateway, following its outage windows
  (`simulators.city_dlt645`);
* one `MqttPublisher` per MQTT gateway with meters, publishing every channel at each tick;
* one `GridFeedPusher` for the grid feed, pushing every tick to the HTTP API.

Ticks are on the local grid (`simulators.schedule`); the first is the latest past one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from collectors.mqtt.errors import BrokerRefusedError, BrokerUnavailableError
from simulators.city_dlt645 import dlt645_gateway, supervise
from simulators.city_modbus import modbus_gateway
from simulators.config import Protocol
from simulators.dlt645_gateway import Dlt645GatewaySimulator
from simulators.errors import SimulatorError
from simulators.fleet import CityFleet, Clock, wall_clock
from simulators.grid_feed import GridFeedClient, GridFeedPusher
from simulators.modbus_server import ModbusMeterSimulator
from simulators.mqtt_publisher import MqttPublisher
from simulators.schedule import every_tick

ALL_PROTOCOLS: frozenset[Protocol] = frozenset({"modbus", "dlt645", "mqtt", "grid-feed"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one running gateway or feed can be reached: ``tcp://host:port`` for bus
    gateways, the topic for MQTT gateways, the API for the grid feed."""

    gateway: str
    protocol: str
    where: str
    meters: int


@dataclass(frozen=True, slots=True)
class FeedTarget:
    """The API the grid feed pushes to: a `GridFeedClient`, its URL (for display) and feed."""

    client: GridFeedClient
    url: str
    feed: str


class CityRunner:
    """Every gateway of ``fleet``'s city (of ``protocols``), started by `start`.

    ``bind`` overrides the listening address of bus gateways; without ``mqtt_url`` MQTT
    gateways stay off, without ``feed`` the grid feed does. ``dlt645_baud`` / ``modbus_baud``
    > 0 put the meters behind DL/T 645 / Modbus gateways on RS-485 buses at that line speed
    (`simulators.line_speed`); 0 answers at once. Example::

        async with CityRunner(CityFleet(city), mqtt_url="mqtt://127.0.0.1:18830") as runner:
            for endpoint in runner.endpoints:
                print(endpoint.gateway, endpoint.where)
            await stop.wait()
    """

    def __init__(
        self,
        fleet: CityFleet,
        *,
        clock: Clock = wall_clock,
        bind: str | None = None,
        mqtt_url: str | None = None,
        feed: FeedTarget | None = None,
        interval: timedelta = timedelta(minutes=15),
        protocols: Collection[Protocol] = ALL_PROTOCOLS,
        dlt645_baud: int = 0,
        modbus_baud: int = 0,
    ) -> None:
        self.fleet, self.clock, self.interval = fleet, clock, interval
        self._mqtt_url, self._feed = mqtt_url, feed
        city = fleet.city
        wanted = {g.id for g in city.gateways if g.protocol in protocols}
        self.modbus: dict[str, ModbusMeterSimulator] = {
            g: modbus_gateway(fleet, g, clock=clock, host=bind, baud=modbus_baud)
            for g in sorted(wanted)
            if city.gateway(g).protocol == "modbus"
        }
        self.dlt645: dict[str, Dlt645GatewaySimulator] = {
            g: dlt645_gateway(fleet, g, clock=clock, host=bind, baud=dlt645_baud)
            for g in sorted(wanted)
            if city.gateway(g).protocol == "dlt645"
        }
        self.mqtt: dict[str, MqttPublisher] = {}
        if mqtt_url is not None:
            self.mqtt = {
                g.id: MqttPublisher(fleet, g.id, url=mqtt_url)
                for g in city.gateways
                if g.id in wanted and g.protocol == "mqtt" and fleet.on(g.id)
            }
        self.pusher: GridFeedPusher | None = None
        if feed is not None and "grid-feed" in protocols and fleet.feed(feed.feed):
            self.pusher = GridFeedPusher(feed.client, fleet.feed(feed.feed))
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: list[Any] = []

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every gateway and feed this runner serves."""
        on = self.fleet.on
        out = [Endpoint(g, "modbus", s.url, len(on(g))) for g, s in self.modbus.items()]
        out += [Endpoint(g, "dlt645", s.url, len(on(g))) for g, s in self.dlt645.items()]
        out += [Endpoint(g, "mqtt", p.topic, len(p.meters)) for g, p in self.mqtt.items()]
        if self.pusher is not None and self._feed is not None:
            where = f"{self._feed.url}/v1/readings"
            out.append(Endpoint(self._feed.feed, "grid-feed", where, len(self.pusher.meters)))
        return out

    async def start(self) -> None:
        """Listen, connect and start the tick loops; on any failure everything started is
        stopped again and a `SimulatorError` says which gateway failed and why."""
        try:
            for gid, server in self.modbus.items():
                await self._listen(gid, server.start(), f"{server.host}:{server.port}")
                self._started.append(server)
            for gid, gateway in self.dlt645.items():
                await self._listen(gid, gateway.start(), f"{gateway.host}:{gateway.port}")
                self._started.append(gateway)
                self._spawn(supervise(gateway, offline=self._offline(gid)))
            for gid, publisher in self.mqtt.items():
                await self._connect(gid, publisher)
                self._started.append(publisher)
                self._spawn(
                    every_tick(self.interval, publisher.publish_at, clock=self.clock, name=gid)
                )
            if self.pusher is not None:
                self._spawn(
                    every_tick(self.interval, self.pusher.push_at, clock=self.clock, name="feed")
                )
        except BaseException:
            await self.stop()
            raise

    async def _listen(self, gateway_id: str, start: Coroutine[Any, Any, None], where: str) -> None:
        try:
            await start
        except OSError as exc:
            raise SimulatorError(
                f"gateway {gateway_id}: cannot listen on {where} ({exc.strerror or exc}); "
                "another program holds the port: stop it or change the port in the city file"
            ) from exc

    async def _connect(self, gateway_id: str, publisher: MqttPublisher) -> None:
        try:
            await publisher.__aenter__()
        except BrokerRefusedError as exc:
            raise SimulatorError(
                f"MQTT gateway {gateway_id}: the broker refused its log-in ({exc}); "
                "run `meterhub simulate register` first, it creates the gateways' broker users"
            ) from exc
        except BrokerUnavailableError as exc:
            raise SimulatorError(
                f"MQTT gateway {gateway_id}: no broker at {self._mqtt_url}"
            ) from exc

    def _offline(self, gateway_id: str) -> Callable[[], bool]:
        return lambda: self.fleet.gateway_offline(gateway_id, self.clock())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop the loops, disconnect the MQTT gateways and close every listener."""
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        started, self._started = self._started, []
        for item in reversed(started):
            if isinstance(item, ModbusMeterSimulator):
                await item.stop()
            elif isinstance(item, Dlt645GatewaySimulator):
                await item.aclose()
            else:
                await item.__aexit__(None, None, None)

    async def __aenter__(self) -> CityRunner:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

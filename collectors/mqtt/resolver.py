"""(gateway id, channel, meter time) -> meter id, from the `meters` table, cached.

An MQTT meter's ``address`` is ``{"gateway_id": "gw-0001", "channel": 3}``. A channel can
carry several meters over time (a replaced meter keeps its channel): the one installed at
the reading's time wins, else the nearest one (the first before any installation, the
newest otherwise), so that the ingest path reports the reading as before installation or
after removal instead of losing it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from collectors.mqtt.errors import ResolverUnavailableError
from meterhub.logs import get_logger

log = get_logger(__name__)

_SELECT = """
SELECT address->>'gateway_id' AS gateway_id, address->>'channel' AS channel,
       id, installed_at, removed_at
FROM meters
WHERE protocol = 'mqtt'
"""
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError)


@dataclass(frozen=True, slots=True)
class _Tenure:
    meter_id: int
    installed_at: datetime
    removed_at: datetime | None


class ChannelMap:
    """The meters of one gateway; call it with ``(channel, ts)`` (a payload `Resolve`)."""

    def __init__(self, tenures: dict[int, list[_Tenure]]) -> None:
        self._tenures = tenures
        #: Channels that have only ever carried one meter: that meter, whatever the time.
        self._only = {ch: meters[0].meter_id for ch, meters in tenures.items() if len(meters) == 1}

    def __call__(self, channel: int, ts: datetime) -> int | None:
        only = self._only.get(channel)
        if only is not None:
            return only
        tenures = self._tenures.get(channel)
        if not tenures:
            return None
        for tenure in tenures:
            if tenure.installed_at <= ts and (tenure.removed_at is None or ts < tenure.removed_at):
                return tenure.meter_id
        return tenures[0 if ts < tenures[0].installed_at else -1].meter_id

    def __len__(self) -> int:
        return len(self._tenures)


_EMPTY = ChannelMap({})


class MeterResolver:
    """Channel maps of every MQTT gateway, reloaded every ``max_age`` seconds; a gateway
    with an unknown channel is looked up again at most every ``miss_interval`` seconds.
    While the database is away the last maps are used.

    Example::

        resolver = MeterResolver(settings.dsn())
        meter_id = (await resolver.channel_map("gw-0001"))(3, ts)
    """

    def __init__(self, dsn: str, *, max_age: float = 60.0, miss_interval: float = 5.0) -> None:
        self._dsn = dsn
        self._max_age = max_age
        self._miss_interval = miss_interval
        self._maps: dict[str, ChannelMap] = {}
        self._loaded_at: float | None = None
        self._looked_up: dict[str, float] = {}
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def channel_map(self, gateway_id: str) -> ChannelMap:
        """The gateway's channels (empty for an unknown gateway); reloads all when stale."""
        if self._loaded_at is None or time.monotonic() - self._loaded_at > self._max_age:
            await self._reload()
        return self._maps.get(gateway_id, _EMPTY)

    async def retry_miss(self, gateway_id: str) -> ChannelMap | None:
        """Look the gateway up again after an unknown channel; None if looked up recently."""
        now = time.monotonic()
        if now - self._looked_up.get(gateway_id, -self._miss_interval) < self._miss_interval:
            return None
        self._looked_up[gateway_id] = now
        await self._reload(gateway_id)
        return self._maps.get(gateway_id, _EMPTY)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close(timeout=5)
            self._conn = None

    async def _reload(self, gateway_id: str | None = None) -> None:
        async with self._lock:
            try:
                rows = await self._fetch(gateway_id)
            except _CONNECTION_ERRORS as exc:
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                if self._loaded_at is None:
                    raise ResolverUnavailableError(f"cannot load MQTT meters: {exc!r}") from exc
                log.warning("cannot reload MQTT meters; using the cached ones", error=repr(exc))
                return
        maps = _group(rows)
        if gateway_id is None:
            self._maps = maps
            self._loaded_at = time.monotonic()
        else:
            self._maps[gateway_id] = maps.get(gateway_id, _EMPTY)

    async def _fetch(self, gateway_id: str | None) -> list[asyncpg.Record]:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
        async with asyncio.timeout(30):
            if gateway_id is None:
                return await self._conn.fetch(_SELECT)
            return await self._conn.fetch(_SELECT + " AND address->>'gateway_id' = $1", gateway_id)


def _group(rows: list[asyncpg.Record]) -> dict[str, ChannelMap]:
    tenures: dict[str, dict[int, list[_Tenure]]] = {}
    for row in rows:
        try:
            channel = int(row["channel"])
        except (TypeError, ValueError):
            log.warning("MQTT meter with a non-integer channel", meter_id=row["id"])
            continue
        tenure = _Tenure(row["id"], row["installed_at"], row["removed_at"])
        tenures.setdefault(row["gateway_id"], {}).setdefault(channel, []).append(tenure)
    for channels in tenures.values():
        for meters in channels.values():
            meters.sort(key=lambda t: t.installed_at)
    return {gateway: ChannelMap(channels) for gateway, channels in tenures.items()}

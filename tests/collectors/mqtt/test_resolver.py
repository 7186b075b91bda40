"""Channels to meters from the `meters` table: replacements, new meters, unknown gateways."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import pytest

from collectors.mqtt.errors import ResolverUnavailableError
from collectors.mqtt.resolver import ChannelMap, MeterResolver, _Tenure
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from tests.collectors.mqtt.conftest import INSTALLED, create_mqtt_meters

pytestmark = pytest.mark.integration

SWAP = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)


async def test_a_replaced_meter_keeps_its_readings_apart(
    db: asyncpg.Connection, settings: Settings, gateway_id: str
) -> None:
    old = (await create_mqtt_meters(db, gateway_id, [1, 2]))[1]
    await db.execute("UPDATE meters SET removed_at = $2 WHERE id = $1", old, SWAP)
    new = (await create_mqtt_meters(db, gateway_id, [1], installed_at=SWAP))[1]
    resolver = MeterResolver(settings.dsn())
    try:
        channels = await resolver.channel_map(gateway_id)
        assert len(channels) == 2
        assert channels(1, datetime(2026, 2, 1, tzinfo=LOCAL_TZ)) == old
        assert channels(1, SWAP) == new
        assert channels(1, datetime(2024, 1, 1, tzinfo=LOCAL_TZ)) == old  # before any: first
        assert channels(3, SWAP) is None
        assert len(await resolver.channel_map("no-such-gateway")) == 0
    finally:
        await resolver.close()


async def test_a_new_meter_is_found_after_a_miss(
    db: asyncpg.Connection, settings: Settings, gateway_id: str
) -> None:
    await create_mqtt_meters(db, gateway_id, [1])
    resolver = MeterResolver(settings.dsn(), miss_interval=60.0)
    try:
        assert (await resolver.channel_map(gateway_id))(2, INSTALLED) is None
        added = (await create_mqtt_meters(db, gateway_id, [2]))[2]
        fresh = await resolver.retry_miss(gateway_id)
        assert fresh is not None and fresh(2, INSTALLED) == added
        assert await resolver.retry_miss(gateway_id) is None  # looked up just now
        assert (await resolver.channel_map(gateway_id))(2, INSTALLED) == added
    finally:
        await resolver.close()


async def test_no_database_and_nothing_cached() -> None:
    resolver = MeterResolver("postgresql://nobody:x@127.0.0.1:1/none")
    with pytest.raises(ResolverUnavailableError):
        await resolver.channel_map("gw")
    await resolver.close()


def test_a_channel_map_picks_the_meter_installed_at_the_reading_time() -> None:
    before, after = datetime(2026, 2, 1, tzinfo=LOCAL_TZ), datetime(2026, 4, 1, tzinfo=LOCAL_TZ)
    channels = ChannelMap(
        {
            1: [_Tenure(11, INSTALLED, None)],  # the only meter a channel ever had: always it
            2: [_Tenure(21, INSTALLED, SWAP), _Tenure(22, SWAP, None)],
        }
    )
    assert [channels(1, ts) for ts in (datetime(2020, 1, 1, tzinfo=LOCAL_TZ), after)] == [11, 11]
    assert [channels(2, ts) for ts in (before, SWAP, after)] == [21, 22, 22]
    assert channels(3, SWAP) is None

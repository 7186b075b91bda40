"""Keys and meter codes while the database is away: what was verified keeps working from
memory, what was not gets a clear "unavailable" (never "unknown"); and the lookups cost
the database little when it is there (last_used_at once a minute, unknown codes cached)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from collectors.gridfeed.errors import MeterLookupUnavailableError
from collectors.gridfeed.meters import FeedMeters
from ingest.quarantine import Reason
from meterhub.settings import Settings
from registry.errors import KeyLookupUnavailableError
from registry.keys import KeyStore, Role, create_key, revoke_key
from tests.pg_cluster import PrivatePostgres
from tests.reliability.support import FEED, connection, grid_codes

pytestmark = pytest.mark.integration


@pytest.fixture
async def private_pool(cluster: PrivatePostgres) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(cluster.dsn(), min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


async def _stop(cluster: PrivatePostgres) -> None:
    await asyncio.to_thread(cluster.stop, mode="immediate")


async def _start(cluster: PrivatePostgres) -> None:
    await asyncio.to_thread(cluster.start)


# -- during an outage ---------------------------------------------------------------------


async def test_keys_verified_before_an_outage_keep_their_answers(
    cluster: PrivatePostgres, private_pool: asyncpg.Pool
) -> None:
    async with connection(cluster.dsn()) as conn:
        good = await create_key(conn, name="feed", role=Role.GRID, scope=FEED)
        revoked = await create_key(conn, name="old feed", role=Role.GRID, scope=FEED)
        never_seen = await create_key(conn, name="new feed", role=Role.GRID, scope=FEED)
        await revoke_key(conn, str(revoked.principal.key_id))
    store = KeyStore(ttl=0.05)
    assert await store.verify(private_pool, good.key) == good.principal
    assert await store.verify(private_pool, revoked.key) is None
    await _stop(cluster)
    try:
        await asyncio.sleep(0.1)  # every cached answer is past its ttl
        for _ in range(3):
            assert await store.verify(private_pool, good.key) == good.principal
            assert await store.verify(private_pool, revoked.key) is None  # still revoked
            with pytest.raises(KeyLookupUnavailableError):  # a 503, never a 401
                await store.verify(private_pool, never_seen.key)
        assert await store.verify(private_pool, "mh_short") is None  # malformed: no lookup
        assert await store.verify(None, good.key) == good.principal
    finally:
        await _start(cluster)
    await asyncio.sleep(1.1)  # past the pause after a failed lookup
    assert await store.verify(private_pool, never_seen.key) == never_seen.principal


async def test_an_empty_memory_cannot_verify_without_the_database() -> None:
    store = KeyStore()
    with pytest.raises(KeyLookupUnavailableError):
        await store.verify(None, "mh_0123abcd_" + "x" * 30)


async def test_meter_codes_known_before_an_outage_keep_resolving(
    cluster: PrivatePostgres, private_pool: asyncpg.Pool
) -> None:
    async with connection(cluster.dsn()) as conn:
        mine = await grid_codes(conn, 2)
        (foreign,) = await grid_codes(conn, 1, "other-feed")
        (later,) = await grid_codes(conn, 1)
    unknown = f"nobody-{uuid.uuid4().hex[:6]}"
    meters = FeedMeters(ttl=0.05)
    before = await meters.resolver(private_pool, feed=FEED, codes=[*mine, foreign, unknown])
    await _stop(cluster)
    try:
        await asyncio.sleep(0.1)
        during = await meters.resolver(private_pool, feed=FEED, codes=[*mine, foreign, unknown])
        assert during.ids == before.ids and set(during.ids) == set(mine)
        assert during(foreign) is Reason.NOT_IN_FEED
        assert during(unknown) is Reason.UNKNOWN_METER
        with pytest.raises(MeterLookupUnavailableError):
            await meters.resolver(private_pool, feed=FEED, codes=[mine[0], later])
    finally:
        await _start(cluster)
    await asyncio.sleep(1.1)
    after = await meters.resolver(private_pool, feed=FEED, codes=[mine[0], later])
    assert set(after.ids) == {mine[0], later}


async def test_codes_cannot_be_resolved_before_the_first_connection() -> None:
    with pytest.raises(MeterLookupUnavailableError):
        await FeedMeters().resolver(None, feed=FEED, codes=["330782-0001"])
    assert (await FeedMeters().resolver(None, feed=FEED, codes=[])).ids == {}


# -- while the database is there (the session database) -------------------------------------


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


async def _last_used(pool: asyncpg.Pool, key_id: int) -> object:
    return await pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id)


async def test_last_used_at_is_written_after_the_secret_and_once_a_minute(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with connection(settings.dsn()) as conn:
        new = await create_key(conn, name="touch", role=Role.GRID, scope=FEED)
    store = KeyStore(ttl=0)  # every verify asks the database
    wrong = new.key[:-4] + ("aaaa" if not new.key.endswith("aaaa") else "bbbb")
    assert await store.verify(pool, wrong) is None
    assert await _last_used(pool, new.principal.key_id) is None  # a wrong secret touches nothing
    assert await store.verify(pool, new.key) == new.principal
    first = await _last_used(pool, new.principal.key_id)
    assert first is not None
    for _ in range(5):
        await asyncio.sleep(0.01)
        assert await store.verify(pool, new.key) == new.principal
    assert await _last_used(pool, new.principal.key_id) == first  # not once per request
    eager = KeyStore(ttl=0, touch_every=0)
    await eager.verify(pool, new.key)
    second = await _last_used(pool, new.principal.key_id)
    assert second is not None and second != first


async def test_a_revocation_takes_effect_after_the_ttl(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with connection(settings.dsn()) as conn:
        new = await create_key(conn, name="revoked soon", role=Role.GRID, scope=FEED)
        store = KeyStore(ttl=0.1)
        assert await store.verify(pool, new.key) == new.principal
        await revoke_key(conn, str(new.principal.key_id))
    await asyncio.sleep(0.15)
    assert await store.verify(pool, new.key) is None


async def test_unknown_codes_are_remembered_so_a_feed_of_them_costs_no_query(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with connection(settings.dsn()) as conn:
        (code,) = await grid_codes(conn, 1)
    unknown = [f"nobody-{uuid.uuid4().hex[:8]}" for _ in range(200)]
    meters = FeedMeters(ttl=60)
    for _ in range(10):
        resolve = await meters.resolver(pool, feed=FEED, codes=[code, *unknown])
        assert set(resolve.ids) == {code}
        assert all(resolve(c) is Reason.UNKNOWN_METER for c in unknown)
    assert meters.queries == 1


async def test_the_memory_of_unknown_codes_is_bounded(pool: asyncpg.Pool) -> None:
    meters = FeedMeters(ttl=60, max_unknown=50)
    first = [f"a-{i}" for i in range(50)]
    await meters.resolver(pool, feed=FEED, codes=first)
    await meters.resolver(pool, feed=FEED, codes=first)
    assert meters.queries == 1  # all 50 remembered
    await meters.resolver(pool, feed=FEED, codes=[f"b-{i}" for i in range(50)])
    assert meters.queries == 2
    await meters.resolver(pool, feed=FEED, codes=first[:1])  # pushed out by the b- codes
    assert meters.queries == 3

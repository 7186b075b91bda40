"""The HTTP push under real faults: `meterhub serve` processes against a private PostgreSQL
(stopped, killed and started again; never the shared one), a client pushing a stream of
batches and retrying what was not acknowledged. Each scenario prints its tally and must
end with lost = 0 and duplicated = 0."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from registry.keys import Role, create_key
from tests.pg_cluster import PrivatePostgres
from tests.reliability.accounting import Tally, assert_exact
from tests.reliability.api_process import ApiProcess, FeedClient, tally, wait_ready
from tests.reliability.broker import PrivateBroker
from tests.reliability.support import FEED, connection, grid_codes

pytestmark = pytest.mark.integration


@dataclass
class Scene:
    cluster: PrivatePostgres
    api: ApiProcess
    key: str
    codes: list[str]

    def client(self) -> FeedClient:
        return FeedClient(self.api.url, self.key, self.codes)

    async def stop_database(self) -> None:
        await asyncio.to_thread(self.cluster.stop, mode="immediate")

    async def start_database(self) -> None:
        await asyncio.to_thread(self.cluster.start)

    async def count(self, name: str, client: FeedClient, batches: range) -> Tally:
        async with connection(self.cluster.dsn()) as conn:
            return await tally(conn, name, client, batches)


@pytest.fixture
async def scene(
    cluster: PrivatePostgres, private_broker: PrivateBroker, tmp_path: Path
) -> AsyncIterator[Scene]:
    """A grid key and 20 meter codes of this test's own; the API not started yet."""
    if not (cluster.data / "postmaster.pid").exists():
        await asyncio.to_thread(cluster.start)
    async with connection(cluster.dsn()) as conn:
        key = await create_key(
            conn, name=f"feed {uuid.uuid4().hex[:6]}", role=Role.GRID, scope=FEED
        )
        codes = await grid_codes(conn, 20, FEED)
    api = ApiProcess(
        dsn=cluster.dsn(),
        spool=tmp_path / "spool",
        log=tmp_path / "api.log",
        mqtt_url=private_broker.ingest_url,
    )
    try:
        yield Scene(cluster, api, key.key, codes)
    finally:
        api.stop()
        if not (cluster.data / "postmaster.pid").exists():
            await asyncio.to_thread(cluster.start)


async def test_an_api_started_without_its_database_becomes_ready_when_it_returns(
    scene: Scene,
) -> None:
    await scene.stop_database()
    scene.api.start()
    # live while the database is still down (it is started only below); the bound is the
    # process's start-up on a busy machine, not a wait for the database
    await asyncio.to_thread(scene.api.wait_live, 30)
    async with httpx.AsyncClient(base_url=scene.api.url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
        client = scene.client()
        assert await client.push(http, 0) == 503  # an empty memory: unavailable, not 401
    batches = range(40)
    stream = asyncio.create_task(client.stream(batches))
    await asyncio.sleep(1.0)
    await scene.start_database()
    back = time.monotonic()
    ready_after = await wait_ready(scene.api.url, timeout=20)
    await stream
    result = await scene.count("api started without database [http]", client, batches)
    print(f"ready {ready_after:.1f} s after the database; statuses {client.statuses}")
    assert_exact(result)
    assert set(client.statuses) <= {202, 503}  # never 401 or 500, never a dropped request
    assert client.statuses[503] >= 2
    assert ready_after < 15
    assert all(s == 202 for at, s in client.log if at > back + ready_after)


async def run_outage(scene: Scene, *, before: float, outage: float, batches: range) -> None:
    scene.api.start()
    await asyncio.to_thread(scene.api.wait_live)
    await wait_ready(scene.api.url, timeout=20)
    client = scene.client()
    stream = asyncio.create_task(client.stream(batches, pace=0.05))
    await asyncio.sleep(before)
    await scene.stop_database()
    down = time.monotonic()
    await asyncio.sleep(outage)
    up = time.monotonic()
    await scene.start_database()
    await stream
    result = await scene.count(
        f"database down {outage:.0f} s under the push [http]", client, batches
    )
    during = client.statuses_between(down, up)
    print(f"during the outage: {during}")
    assert_exact(result)
    assert set(during) == {202} and during[202] >= outage * 5  # spooled all along
    assert client.spooled >= during[202]
    assert set(client.statuses) == {202}  # not one refusal before, during or after


async def test_a_database_outage_under_the_push_is_spooled_throughout(scene: Scene) -> None:
    await run_outage(scene, before=0.5, outage=3.0, batches=range(80))


@pytest.mark.slow
async def test_a_20_s_database_outage_under_the_push_is_spooled_throughout(
    scene: Scene,
) -> None:
    await run_outage(scene, before=2.0, outage=20.0, batches=range(500))


async def run_kill(scene: Scene, *, database_down: bool, kills: int, batches: range) -> None:
    scene.api.start()
    await asyncio.to_thread(scene.api.wait_live)
    await wait_ready(scene.api.url, timeout=20)
    client = scene.client()
    stream = asyncio.create_task(client.stream(batches, pace=0.03))
    for _ in range(kills):
        await asyncio.sleep(0.5)
        if database_down:
            await scene.stop_database()
            await asyncio.sleep(0.5)  # batches spooled, then the kill
        acked_before = len(client.acked_batches)
        scene.api.kill()
        scene.api.start()
        await asyncio.to_thread(scene.api.wait_live)
        if database_down:
            await asyncio.sleep(1.0)  # a fresh process without its database: 503s
            await scene.start_database()
        await wait_ready(scene.api.url, timeout=30)
        assert len(client.acked_batches) >= acked_before
    await stream
    name = f"api SIGKILLed x{kills}" + (" while the database is down" if database_down else "")
    name += " [http]"
    result = await scene.count(name, client, batches)
    assert_exact(result)
    assert set(client.statuses) <= {0, 202, 503}
    assert client.statuses.get(0, 0) + client.statuses.get(503, 0) >= 1  # the kill was felt
    if database_down:
        assert client.spooled >= 1 and client.statuses.get(503, 0) >= 1


@pytest.mark.parametrize("database_down", [False, True], ids=["database up", "database down"])
async def test_the_api_killed_mid_stream_loses_and_doubles_nothing(
    scene: Scene, database_down: bool
) -> None:
    await run_kill(scene, database_down=database_down, kills=1, batches=range(60))


@pytest.mark.slow
@pytest.mark.parametrize("database_down", [False, True], ids=["database up", "database down"])
async def test_the_api_killed_again_and_again_loses_and_doubles_nothing(
    scene: Scene, database_down: bool
) -> None:
    await run_kill(scene, database_down=database_down, kills=4, batches=range(600))

"""PostgreSQL killed (``pg_ctl stop -m immediate`` on the suite's private cluster) and started
again under all three paths at once: the HTTP push into a real `meterhub serve`, a gateway
publishing to the MQTT ingest worker (a private Mosquitto), and the collector polling a
Modbus and a DL/T 645 gateway. Each path keeps its own ledger; every one ends exact."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.settings import Settings
from registry.keys import Role, create_key
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import create_mqtt_meters
from tests.pg_cluster import PrivatePostgres
from tests.reliability.accounting import Ledger, Tally, assert_exact
from tests.reliability.api_process import ApiProcess, FeedClient, tally, wait_ready
from tests.reliability.broker import PrivateBroker
from tests.reliability.mqtt_stream import CHANNELS, STEP, mqtt_ledger, paced_stream
from tests.reliability.polling import BookingSink, PollStream, poll_fleet
from tests.reliability.support import FEED, connection, grid_codes

pytestmark = pytest.mark.integration


async def run_database_kill(
    cluster: PrivatePostgres,
    settings: Settings,
    broker: PrivateBroker,
    tmp_path: Path,
    *,
    seconds: float,
    down_at: float,
    down_for: float,
) -> list[Tally]:
    if not (cluster.data / "postmaster.pid").exists():
        await asyncio.to_thread(cluster.start)
    private = settings.model_copy(
        update={
            "database_url": SecretStr(cluster.dsn()),
            "mqtt_url": SecretStr(broker.ingest_url),
        }
    )
    name = f"postgres killed (immediate) {down_for:.0f} s"
    gateway_id = f"rel-{uuid.uuid4().hex[:8]}"
    password = broker.add_user(gateway_id, f"pw-{gateway_id}")
    async with connection(cluster.dsn()) as conn:
        key = await create_key(conn, name=f"feed {gateway_id}", role=Role.GRID, scope=FEED)
        codes = await grid_codes(conn, 20, FEED)
        meters = await create_mqtt_meters(conn, gateway_id, CHANNELS)
    api = ApiProcess(
        dsn=cluster.dsn(),
        spool=tmp_path / "api-spool",
        log=tmp_path / "api.log",
        mqtt_url=broker.ingest_url,
    )
    api.start()
    poll_ledger = Ledger(f"{name} [poll]")
    try:
        await asyncio.to_thread(api.wait_live, 30)
        await wait_ready(api.url, timeout=30)
        feed = FeedClient(api.url, key.key, codes)
        gateway = MqttGatewaySimulator(
            broker.url, gateway_id, password, channels=CHANNELS, interval=STEP, timeout=60
        )
        mqtt_settings = private.model_copy(update={"spool_dir": tmp_path / "mqtt-spool"})
        poll_settings = private.model_copy(update={"spool_dir": tmp_path / "poll-spool"})
        async with (
            connection(cluster.dsn()) as conn,
            poll_fleet(conn) as fleet,
            BookingSink(poll_settings, poll_ledger) as poll_sink,
            IngestSink(mqtt_settings) as mqtt_sink,
            MqttIngestWorker(
                mqtt_settings,
                mqtt_sink,
                gateways=gateway_id,
                client_id=f"ingest-{gateway_id}",
                session_expiry=600,
            ),
            gateway,
        ):
            poller = PollStream(poll_sink)
            await poller.load(conn, fleet)
            await conn.close()  # the database goes away below
            batches = range(int(seconds / 0.05))
            http = asyncio.create_task(feed.stream(batches, pace=0.05))
            mqtt = asyncio.create_task(paced_stream(gateway, messages=int(seconds * 50), rate=50))
            polls = asyncio.create_task(poller.run(range(int(seconds / 0.1)), pace=0.05))
            await asyncio.sleep(down_at)
            await asyncio.to_thread(cluster.stop, mode="immediate")
            await asyncio.sleep(down_for)
            await asyncio.to_thread(cluster.start)
            try:
                await asyncio.gather(http, polls)
                delivered = await mqtt
            finally:
                await poller.close()
            async with connection(cluster.dsn()) as conn:
                tallies = [
                    await tally(conn, f"{name} [http]", feed, batches),
                    await mqtt_ledger(f"{name} [mqtt]", meters, delivered).settle(conn),
                    await poll_ledger.settle(conn),
                ]
        print(f"http statuses {feed.statuses}, spooled batches {feed.spooled}")
        return tallies
    finally:
        api.stop()
        if not (cluster.data / "postmaster.pid").exists():
            await asyncio.to_thread(cluster.start)


async def test_postgres_killed_under_every_path_loses_and_doubles_nothing(
    cluster: PrivatePostgres,
    broker_settings: Settings,
    private_broker: PrivateBroker,
    tmp_path: Path,
) -> None:
    for result in await run_database_kill(
        cluster, broker_settings, private_broker, tmp_path, seconds=8, down_at=2, down_for=3
    ):
        assert_exact(result)


@pytest.mark.slow
async def test_postgres_killed_for_30_s_under_every_path_loses_and_doubles_nothing(
    cluster: PrivatePostgres,
    broker_settings: Settings,
    private_broker: PrivateBroker,
    tmp_path: Path,
) -> None:
    for result in await run_database_kill(
        cluster, broker_settings, private_broker, tmp_path, seconds=60, down_at=10, down_for=30
    ):
        assert_exact(result)

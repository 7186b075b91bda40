"""A worker killed or stopped mid-stream loses nothing: its session keeps what was not acked."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from functools import partial
from pathlib import Path

import asyncpg
import orjson
import pytest

from collectors.mqtt.worker import WorkerStats
from ingest.sink import IngestSink
from meterhub.settings import PROJECT_ROOT, Settings
from simulators.mqtt_gateway import MqttGatewaySimulator, linear_energy
from tests.collectors.mqtt.conftest import (
    T0,
    WorkerFactory,
    create_mqtt_meters,
    ensure_gateway_user,
    stored,
)

pytestmark = pytest.mark.integration


def _acked_more_than(count: int, stats: WorkerStats) -> bool:
    return stats.acked > count


async def start_worker_process(
    settings: Settings, *, group: str, client_id: str, gateway_id: str, spool: Path
) -> asyncio.subprocess.Process:
    """``python -m cli.mqtt`` in a child process; returns once it has subscribed."""
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_SPOOL_DIR": str(spool),
        "MHUB_BATCH_MAX_AGE": "0.02",
        "MHUB_LOG_FORMAT": "json",
        "MHUB_LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli.mqtt", "--group", group, "--client-id", client_id),
        *("--gateways", gateway_id, "--receive-maximum", "10", "--session-expiry", "300"),
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[bytes] = []
    async with asyncio.timeout(30):
        while line := await process.stderr.readline():
            seen.append(line)
            if line.startswith(b"{") and orjson.loads(line).get("event") == "mqtt subscribed":
                return process
    raise AssertionError(f"worker exited before subscribing: {b''.join(seen).decode()}")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
async def test_a_worker_stopped_mid_stream_loses_nothing(
    db: asyncpg.Connection,
    mqtt_settings: Settings,
    sink: IngestSink,
    broker_url: str,
    gateway_id: str,
    group: str,
    worker_factory: WorkerFactory,
    tmp_path: Path,
    signum: signal.Signals,
) -> None:
    """SIGKILL: what was committed but not acknowledged comes back as duplicates.
    SIGTERM: the worker acknowledges everything it committed before it leaves."""
    password = ensure_gateway_user(gateway_id)
    channels = range(1, 9)
    meters = await create_mqtt_meters(db, gateway_id, channels)
    messages, steps = 600, 2
    total = messages * steps * len(channels)
    process = await start_worker_process(
        mqtt_settings,
        group=group,
        client_id=f"{group}-w1",
        gateway_id=gateway_id,
        spool=tmp_path / "child-spool",
    )
    assert process.stderr is not None
    draining = asyncio.create_task(process.stderr.read())  # keep the pipe from filling up
    try:
        async with MqttGatewaySimulator(
            broker_url, gateway_id, password, channels=channels, max_inflight=20
        ) as gateway:
            publishing = asyncio.create_task(
                gateway.publish_stream(T0, messages=messages, steps=steps)
            )
            async with asyncio.timeout(60):
                # Polls: the progress to watch is another process's.
                while (at_stop := len(await stored(db, meters.values()))) < total // 4:
                    await asyncio.sleep(0.01)
            process.send_signal(signum)
            async with asyncio.timeout(60):
                returncode = await process.wait()
            assert returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 0)
            assert await publishing == total
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log = await draining
    assert at_stop < total, "the worker finished before it was stopped"
    if signum == signal.SIGTERM:
        assert b"mqtt worker stopped" in log

    # The same client id resumes the session: unacknowledged and queued messages come back.
    async with worker_factory(sink, "w1") as again:
        async with asyncio.timeout(60):
            while True:
                acked = again.stats.acked  # before the query: a commit precedes its ack
                if len(await stored(db, meters.values())) == total:
                    break
                await again.wait_until(partial(_acked_more_than, acked), timeout=60)
        stats = again.stats
    rows = await stored(db, meters.values())
    print(f"stopped at {at_stop}/{total}; resumed worker: {stats}")
    assert len(rows) == total
    assert stats.conflicts == 0 and stats.acked == stats.received
    if signum == signal.SIGTERM:
        assert stats.duplicates == 0
    by_meter = {meter: channel for channel, meter in meters.items()}
    assert all(
        r["energy"] == linear_energy(by_meter[r["meter_id"]], r["ts"])["energy"] for r in rows
    )
    conflicts = "SELECT count(*) FROM reading_conflicts WHERE meter_id = ANY($1::bigint[])"
    assert await db.fetchval(conflicts, list(meters.values())) == 0

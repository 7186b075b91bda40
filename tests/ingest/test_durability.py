"""Acknowledged readings survive a crashed database and a killed process.

The database that is crashed here is a cluster of the test's own (tests/pg_cluster.py),
never the shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from ingest import batch_codec
from ingest.sink import IngestSink
from ingest.spool import Spool
from ingest.writer import Batch
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import PROJECT_ROOT, Settings
from tests.ingest import spool_child
from tests.ingest.conftest import create_meters
from tests.pg_cluster import PrivatePostgres

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, tzinfo=LOCAL_TZ)


def readings(meters: list[int], batch_no: int, per_meter: int = 25) -> list[Reading]:
    return [
        Reading(
            meter_id=m,
            ts=T0 + timedelta(minutes=15 * (batch_no * per_meter + i)),
            energy=float(batch_no * per_meter + i),
            source="durability",
        )
        for m in meters
        for i in range(per_meter)
    ]


async def _stored(dsn: str, meters: list[int]) -> set[tuple[int, datetime]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT meter_id, ts FROM readings WHERE meter_id = ANY($1)", meters
        )
        return {(r["meter_id"], r["ts"]) for r in rows}
    finally:
        await conn.close()


async def _new_meters(dsn: str, count: int) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return await create_meters(conn, count)
    finally:
        await conn.close()


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_database_crashed_mid_stream_loses_nothing(
    sink_settings: Settings, private_postgres: PrivatePostgres
) -> None:
    dsn = private_postgres.dsn()
    sink_settings = sink_settings.model_copy(update={"database_url": SecretStr(dsn)})
    meters = await _new_meters(dsn, 4)
    acked: list[Reading] = []
    spooled_batches = 0
    async with IngestSink(sink_settings) as sink:
        for batch_no in range(30):
            if batch_no == 8:
                await asyncio.to_thread(private_postgres.stop, mode="immediate")
            if batch_no == 20:
                await asyncio.to_thread(private_postgres.start)
            batch = readings(meters, batch_no)
            result = await sink.submit(batch)
            spooled_batches += result.spooled
            assert result.spooled or result.accepted == len(batch)
            acked += batch
        await sink.wait_replayed(timeout=60)
    assert spooled_batches >= 12  # batches 8..19 at least went to the spool
    assert await _stored(dsn, meters) == {(r.meter_id, r.ts) for r in acked}
    assert not any(Path(sink_settings.spool_path).glob("*.seg"))


async def test_killed_process_replays_its_spool_on_restart(
    sink_settings: Settings, tmp_path: Path
) -> None:
    dsn = sink_settings.dsn()
    meters = await _new_meters(dsn, 3)
    spool_dir = tmp_path / "killed-spool"
    dead = "postgresql://nobody:x@127.0.0.1:9/none"  # nothing listens: everything spools
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.spool_child", str(spool_dir), dead, *map(str, meters)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked = []
    for line in child.stdout:
        if not line.startswith("ACK "):
            continue
        acked.append(int(line.split()[1]))
        if len(acked) == 25:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=10)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    settings = sink_settings.model_copy(update={"spool_dir": spool_dir})
    async with IngestSink(settings) as sink:
        await sink.wait_replayed(timeout=60)
    stored = await _stored(dsn, meters)
    expected = {(r.meter_id, r.ts) for n in acked for r in spool_child.batch(n, meters)}
    assert expected <= stored
    # At most the one batch that was fsynced but not yet printed can be there beyond that.
    assert len(stored - expected) <= spool_child.PER_BATCH * len(meters)


async def test_truncated_spool_segment_is_detected_and_reported(
    sink_settings: Settings, tmp_path: Path
) -> None:
    dsn = sink_settings.dsn()
    meters = await _new_meters(dsn, 2)
    spool_dir = tmp_path / "torn-spool"
    spool = Spool(spool_dir, max_bytes=2**30)
    batches = [readings(meters, n) for n in range(3)]
    for batch in batches:
        spool.append(batch_codec.encode(Batch([batch], [])))
    spool.release()
    (segment,) = spool_dir.glob("*.seg")
    with segment.open("r+b") as f:
        f.truncate(segment.stat().st_size - 10)  # a crash in the middle of the last record
    torn_before = _metric("meterhub_spool_torn_records_total")

    settings = sink_settings.model_copy(update={"spool_dir": spool_dir})
    async with IngestSink(settings) as sink:
        await sink.wait_replayed(timeout=60)

    assert _metric("meterhub_spool_torn_records_total") == torn_before + 1
    stored = await _stored(dsn, meters)
    assert stored == {(r.meter_id, r.ts) for batch in batches[:2] for r in batch}

"""The spool under the HTTP push into a real `meterhub serve` whose database (the private
cluster) is down: its disk full (a small tmpfs under the default size limit), and a record
damaged in the middle of a segment while the process was dead. What is acknowledged is
stored once; what the full disk refused got 503 + Retry-After and is sent again; the damaged
record's readings are set aside with their segment (spool/corrupt/), every intact record is
replayed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import batch_codec
from ingest.spool import scan_segment
from registry.keys import Role, create_key
from tests.pg_cluster import PrivatePostgres
from tests.reliability.accounting import Key, Ledger, assert_exact
from tests.reliability.api_process import STEP, T0, ApiProcess, FeedClient, wait_ready
from tests.reliability.support import FEED, connection, grid_codes
from tests.tmpfs import tmpfs

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    with tmpfs(1, prefix="meterhub-rel-full-") as mount_point:
        yield mount_point


async def _feed(cluster: PrivatePostgres, meters: int) -> tuple[str, list[str]]:
    if not (cluster.data / "postmaster.pid").exists():
        await asyncio.to_thread(cluster.start)
    async with connection(cluster.dsn()) as conn:
        key = await create_key(
            conn, name=f"feed {uuid.uuid4().hex[:6]}", role=Role.GRID, scope=FEED
        )
        return key.key, await grid_codes(conn, meters, FEED)


def _ledger(name: str, ids: list[int], client: FeedClient, batches: range) -> Ledger:
    ledger = Ledger(name)
    ledger.send(((m, T0 + n * STEP), 100.0 + n) for n in batches for m in ids)
    ledger.ack((m, T0 + n * STEP) for n in client.acked_batches for m in ids)
    return ledger


async def _ids(cluster: PrivatePostgres, codes: list[str]) -> list[int]:
    async with connection(cluster.dsn()) as conn:
        rows = await conn.fetch("SELECT id FROM meters WHERE code = ANY($1::text[])", codes)
    return [r["id"] for r in rows]


async def run_disk_full(
    cluster: PrivatePostgres, disk: Path, tmp_path: Path, *, batches: range, meters: int
) -> None:
    key, codes = await _feed(cluster, meters)
    api = ApiProcess(dsn=cluster.dsn(), spool=disk / "spool", log=tmp_path / "api.log")
    api.start()
    try:
        await asyncio.to_thread(api.wait_live, 30)
        await wait_ready(api.url, timeout=30)
        client = FeedClient(api.url, key, codes, retry=0.1)
        await client.stream(batches[:1])  # the key and the codes known before the outage
        await asyncio.to_thread(cluster.stop, mode="immediate")
        stream = asyncio.create_task(client.stream(batches[1:], pace=0.0, give_up=300))
        while not client.spooled or client.statuses.get(503, 0) < 5:
            assert not stream.done(), f"the disk never filled: {client.statuses}"
            await asyncio.sleep(0.05)  # spooling until the disk is full: 503, not torn
        full_at = len(client.acked_batches)
        await asyncio.to_thread(cluster.start)
        await stream
        ledger = _ledger(
            "spool disk full (tmpfs) [http]", await _ids(cluster, codes), client, batches
        )
        async with connection(cluster.dsn()) as conn:
            tally = await ledger.settle(conn, wait=60)
    finally:
        api.stop()
    print(f"full after {full_at} batches; statuses {client.statuses}; spooled {client.spooled}")
    assert_exact(tally)
    assert set(client.statuses) <= {202, 503}  # never a 500, never a dropped connection
    assert client.spooled >= full_at - 1 > 0  # all but the first (before the outage)


async def test_a_full_spool_disk_refuses_with_503_and_loses_nothing(
    cluster: PrivatePostgres, tiny_disk: Path, tmp_path: Path
) -> None:
    await run_disk_full(cluster, tiny_disk, tmp_path, batches=range(120), meters=300)


@pytest.mark.slow
async def test_a_full_spool_disk_for_longer_refuses_with_503_and_loses_nothing(
    cluster: PrivatePostgres, tiny_disk: Path, tmp_path: Path
) -> None:
    await run_disk_full(cluster, tiny_disk, tmp_path, batches=range(600), meters=500)


def _damage_a_middle_record(spool: Path) -> tuple[Path, bytes, list[Key]]:
    """Flip the last byte of the middle record of the fullest segment; that segment, its
    damaged bytes and the (meter, ts) keys the record held."""
    scans = [scan_segment(p) for p in sorted(spool.glob("*.seg"))]
    scan = max(scans, key=lambda s: len(s.entries))
    assert len(scan.entries) >= 3, [len(s.entries) for s in scans]
    entry = scan.entries[len(scan.entries) // 2]
    batch = batch_codec.decode(entry.payload)
    keys = [(r.meter_id, r.ts) for chunk in batch.chunks for r in chunk]
    damaged = bytearray(scan.path.read_bytes())
    damaged[entry.end - 1] ^= 0xFF
    scan.path.write_bytes(bytes(damaged))
    return scan.path, bytes(damaged), keys


async def test_a_corrupt_spool_segment_costs_only_its_damaged_record(
    cluster: PrivatePostgres, tmp_path: Path
) -> None:
    key, codes = await _feed(cluster, 20)
    spool = tmp_path / "spool"
    api = ApiProcess(dsn=cluster.dsn(), spool=spool, log=tmp_path / "api.log")
    api.start()
    client = FeedClient(api.url, key, codes)
    warm, first, second = range(1), range(1, 41), range(41, 81)
    try:
        await asyncio.to_thread(api.wait_live, 30)
        await wait_ready(api.url, timeout=30)
        await client.stream(warm)  # the key and the codes known before the outage
        await asyncio.to_thread(cluster.stop, mode="immediate")
        await client.stream(first, pace=0.01)  # all spooled: the database is down
        assert client.spooled == len(first)
        await asyncio.to_thread(api.kill)
        segment, damaged, keys = _damage_a_middle_record(spool)
        await asyncio.to_thread(cluster.start)
        api.start()
        await asyncio.to_thread(api.wait_live, 30)
        await client.stream(second, pace=0.01)  # load goes on while the spool is replayed
        await wait_ready(api.url, timeout=60)
        ids = await _ids(cluster, codes)
        ledger = _ledger("corrupt spool segment [http]", ids, client, range(81))
        ledger.set_aside.update(keys)
        async with connection(cluster.dsn()) as conn:
            tally = await ledger.settle(conn, wait=60)
            stored = await conn.fetchval(
                "SELECT count(*) FROM readings r JOIN unnest($1::bigint[], $2::timestamptz[]) "
                "AS k(meter_id, ts) USING (meter_id, ts)",
                [m for m, _ in keys],
                [t for _, t in keys],
            )
    finally:
        api.stop()
    assert_exact(tally)
    assert tally.set_aside == len(codes) and stored == 0
    (kept,) = (spool / "corrupt").glob("*.seg")
    assert kept.name.startswith(segment.stem) and kept.read_bytes() == damaged  # kept as is
    assert not list(spool.glob("*.seg"))

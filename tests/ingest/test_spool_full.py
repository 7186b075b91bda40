"""A really full disk under the spool (a 4 MiB tmpfs): what is acknowledged is whole and is
stored exactly once later; what is refused gets the spool-full error (HTTP 503 +
Retry-After) and is not stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from api.app import create_app
from ingest import batch_codec
from ingest.errors import SpoolFullError
from ingest.sink import IngestSink
from ingest.spool import Spool, scan_segment
from ingest.writer import Batch
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from registry.keys import Role, create_key
from tests.ingest.conftest import create_meters
from tests.tmpfs import tmpfs

pytestmark = pytest.mark.integration

T0 = datetime(2025, 6, 1, tzinfo=LOCAL_TZ)  # after INSTALLED; the steps are minutes
UNREACHABLE = "postgresql://nobody:x@127.0.0.1:9/none"  # nothing listens: everything spools
Key = tuple[int, datetime]


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    with tmpfs(4, prefix="meterhub-full-") as mount_point:
        yield mount_point


def _assert_no_torn_or_corrupt_record(spool_dir: Path) -> None:
    scans = [scan_segment(path) for path in sorted(spool_dir.glob("*.seg"))]
    assert scans, "the spool holds something"
    assert [(s.torn_bytes, s.corrupt_records) for s in scans] == [(0, 0)] * len(scans)


async def _stored(dsn: str, meters: list[int]) -> list[Key]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT meter_id, ts FROM readings WHERE meter_id = ANY($1)", meters
        )
        return [(r["meter_id"], r["ts"]) for r in rows]
    finally:
        await conn.close()


async def test_a_full_disk_acknowledges_only_whole_records(
    sink_settings: Settings, tiny_disk: Path
) -> None:
    conn = await asyncpg.connect(sink_settings.dsn())
    try:
        meters = await create_meters(conn, 4)
    finally:
        await conn.close()
    spool_dir = tiny_disk / "spool"
    offline = sink_settings.model_copy(
        update={"spool_dir": spool_dir, "database_url": SecretStr(UNREACHABLE)}
    )
    slots = count()
    acked: set[Key] = set()
    refused: set[Key] = set()
    refused_small = 0
    async with IngestSink(offline) as sink:
        for round_no in range(5_000):
            per_meter = (400, 10, 90)[round_no % 3]  # a small record may fit where a big did not
            batch = [
                Reading(m, T0 + timedelta(minutes=next(slots)), energy=1.0, source="full")
                for _ in range(per_meter)
                for m in meters
            ]
            keys = {(r.meter_id, r.ts) for r in batch}
            try:
                result = await sink.submit(batch)
            except SpoolFullError:
                refused |= keys
                refused_small += per_meter == 10
                if refused_small == 3:
                    break
            else:
                assert result.spooled
                acked |= keys
        else:
            pytest.fail("the 4 MiB disk never filled")
    assert acked and refused
    _assert_no_torn_or_corrupt_record(spool_dir)

    online = sink_settings.model_copy(update={"spool_dir": spool_dir})
    async with IngestSink(online) as sink:
        await sink.wait_replayed(timeout=120)
    stored = await _stored(sink_settings.dsn(), meters)
    assert len(stored) == len(set(stored))  # nothing doubled
    assert set(stored) == acked  # nothing acknowledged lost, nothing refused stored
    assert not any(spool_dir.glob("*.seg"))


async def _grid_feed(db: asyncpg.Connection, count_: int) -> tuple[str, dict[str, int]]:
    """A grid key for a new feed and ``count_`` meters in it; the key, codes -> ids."""
    feed = f"full-{uuid.uuid4().hex[:8]}"
    ids = await create_meters(db, count_)
    codes = {f"{feed}-{n}": meter_id for n, meter_id in enumerate(ids)}
    for code, meter_id in codes.items():
        await db.execute(
            "UPDATE meters SET code = $2, address = jsonb_build_object('feed', $3::text) "
            "WHERE id = $1",
            meter_id,
            code,
            feed,
        )
    key = await create_key(db, name="full-disk test", role=Role.GRID, scope=feed)
    return key.key, codes


async def test_a_full_disk_answers_503_with_retry_after_through_the_push_api(
    settings: Settings, tiny_disk: Path
) -> None:
    """The API's sink spools while its replay waits on a row another transaction holds;
    the pushes fill the 4 MiB disk; then the row is released and the replay stores exactly
    what was acknowledged with 202."""
    db = await asyncpg.connect(settings.dsn())
    blocker = await asyncpg.connect(settings.dsn())
    try:
        api_key, codes = await _grid_feed(db, 3)
        first_id = next(iter(codes.values()))
        spool_dir = tiny_disk / "spool"
        # An earlier run's spool, whose replay will wait for the blocker's transaction.
        early = Spool(spool_dir, max_bytes=2**30)
        early.append(batch_codec.encode(Batch([[Reading(first_id, T0, energy=1.0)]], [])))
        early.release()
        block = blocker.transaction()
        await block.start()
        await blocker.execute(
            "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, 2.0, 'blocker')",
            first_id,
            T0,
        )
        api_settings = settings.model_copy(
            update={"spool_dir": spool_dir, "batch_max_age": 0.02, "interval_worker": False}
        )
        app = create_app(api_settings)
        acked: set[Key] = {(first_id, T0)}
        refused: set[Key] = set()
        headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        slots = count(1)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            for _ in range(2_000):
                items = [
                    (code, T0 + timedelta(minutes=next(slots)))
                    for _ in range(300)
                    for code in codes
                ]
                body = [{"meter": c, "ts": ts.isoformat(), "energy": 5.0} for c, ts in items]
                response = await http.post(
                    "/v1/readings", content=orjson.dumps(body), headers=headers
                )
                keys = {(codes[c], ts) for c, ts in items}
                if response.status_code == 503:
                    assert response.headers["Retry-After"] == "30"
                    assert response.json()["type"] == "/problems/unavailable"
                    refused |= keys
                    if len(refused) >= 3 * len(keys):
                        break
                else:
                    assert response.status_code == 202, response.text
                    assert response.json()["spooled"] is True
                    acked |= keys
            else:
                pytest.fail("the 4 MiB disk never filled")
            _assert_no_torn_or_corrupt_record(spool_dir)
            await block.rollback()
            await app.state.sink.wait_replayed(timeout=120)
        stored = await _stored(settings.dsn(), list(codes.values()))
        assert len(stored) == len(set(stored))
        assert set(stored) == acked
    finally:
        await blocker.close()
        await db.close()

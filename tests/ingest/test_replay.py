"""Replaying the spool: a damaged record costs only itself (the segment is set aside, every
intact record is stored), and a replay interrupted half way inserts nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY

from ingest import batch_codec
from ingest.quarantine import QuarantineRecord, Reason
from ingest.sink import IngestSink
from ingest.spool import Spool, scan_segment
from ingest.writer import Batch
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from registry.keys import Role, create_key
from tests.ingest.conftest import create_meters
from tests.support import in_process_api

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)
UNKNOWN_METER = 9_000_000_000_000
_PROGRESS_ROWS = "SELECT count(*) FROM spool_replay WHERE segment = $1"


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class Scenario:
    """Three spooled batches, each with good readings, a reading that conflicts with a
    stored one, an in-batch conflict, a reading of an unknown meter and a payload reject."""

    def __init__(self, meters: list[int]) -> None:
        self.meters = meters
        self.source = f"replay-{uuid.uuid4().hex[:8]}"

    def ts(self, n: int, i: int) -> datetime:
        return T0 + timedelta(minutes=15 * (100 * n + i))

    def stored_before(self) -> list[Reading]:
        """Rows already in the database that the batches' readings conflict with."""
        return [Reading(self.meters[1], self.ts(n, 50), energy=1.0, source="old") for n in range(3)]

    def batch(self, n: int) -> Batch:
        a, b = self.meters
        good = [Reading(a, self.ts(n, i), energy=float(i), source=self.source) for i in range(20)]
        twice = [
            Reading(b, self.ts(n, 60), energy=v, source=self.source) for v in (5.0, 6.0)
        ]  # the same meter and time with two values in one batch
        odd = [
            Reading(b, self.ts(n, 50), energy=2.0, source=self.source),  # vs stored_before
            Reading(UNKNOWN_METER, self.ts(n, 0), energy=1.0, source=self.source),
        ]
        reject = QuarantineRecord(self.source, Reason.MALFORMED_PAYLOAD, f"batch {n}", "{", None)
        return Batch([good, twice + odd], [reject])

    def stored_keys(self, batches: Sequence[int]) -> set[tuple[int, datetime]]:
        a, b = self.meters
        keys = {(a, self.ts(n, i)) for n in batches for i in range(20)}
        return keys | {(b, self.ts(n, 60)) for n in batches}

    async def store_before(self, conn: asyncpg.Connection) -> None:
        await conn.executemany(
            "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, $3, $4)",
            [(r.meter_id, r.ts, r.energy, r.source) for r in self.stored_before()],
        )

    async def outcome(self, conn: asyncpg.Connection) -> dict[str, object]:
        b = self.meters[1]
        readings = await conn.fetch(
            "SELECT meter_id, ts FROM readings WHERE meter_id = ANY($1) AND source = $2",
            self.meters,
            self.source,
        )
        quarantine = await conn.fetch(
            "SELECT reason, detail, count(*) AS n FROM quarantine WHERE source = $1 "
            "GROUP BY reason, detail ORDER BY reason, detail",
            self.source,
        )
        conflicts = await conn.fetch(
            "SELECT ts, count(*) AS n FROM reading_conflicts WHERE meter_id = $1 AND source = $2 "
            "GROUP BY ts ORDER BY ts",
            b,
            self.source,
        )
        return {
            "readings": sorted((r["meter_id"], r["ts"]) for r in readings),
            "quarantine": [(r["reason"], r["detail"], r["n"]) for r in quarantine],
            "conflicts": [(r["ts"], r["n"]) for r in conflicts],
        }

    def expected(self, batches: Sequence[int]) -> dict[str, object]:
        quarantine = [("malformed_payload", f"batch {n}", 1) for n in batches]
        quarantine += [("unknown_meter", f"meter {UNKNOWN_METER} is not registered", len(batches))]
        conflicts = sorted((self.ts(n, i), 1) for n in batches for i in (50, 60))
        return {
            "readings": sorted(self.stored_keys(batches)),
            "quarantine": sorted(quarantine),
            "conflicts": conflicts,
        }


def _spool_batches(directory: Path, batches: list[Batch]) -> Path:
    spool = Spool(directory, max_bytes=2**30)
    for batch in batches:
        spool.append(batch_codec.encode(batch))
    spool.release()
    (segment,) = directory.glob("*.seg")
    return segment


async def _scenario(settings: Settings) -> tuple[Scenario, asyncpg.Connection]:
    conn = await asyncpg.connect(settings.dsn())
    scenario = Scenario(await create_meters(conn, 2))
    await scenario.store_before(conn)
    return scenario, conn


async def test_a_damaged_record_costs_only_itself_and_the_segment_is_kept(
    sink_settings: Settings, tmp_path: Path
) -> None:
    scenario, conn = await _scenario(sink_settings)
    try:
        spool_dir = tmp_path / "spool"
        segment = _spool_batches(spool_dir, [scenario.batch(n) for n in range(3)])
        original = segment.read_bytes()
        damaged = bytearray(original)
        damaged[scan_segment(segment).entries[1].end - 1] ^= 0xFF  # in the middle record
        segment.write_bytes(bytes(damaged))
        corrupt_before = _metric("meterhub_spool_corrupt_segments_total")
        records_before = _metric("meterhub_spool_corrupt_records_total")

        settings = sink_settings.model_copy(update={"spool_dir": spool_dir})
        async with IngestSink(settings) as sink:
            await sink.wait_replayed(timeout=60)
        assert await scenario.outcome(conn) == scenario.expected([0, 2])
        assert not any(spool_dir.glob("*.seg"))
        (kept,) = (spool_dir / "corrupt").glob("*.seg")
        assert kept.read_bytes() == bytes(damaged)  # every byte kept, for inspection
        assert _metric("meterhub_spool_corrupt_segments_total") == corrupt_before + 1
        assert _metric("meterhub_spool_corrupt_records_total") == records_before + 1
        assert _metric("meterhub_spool_set_aside_segments") == 1
        segment_id = scan_segment(kept).segment_id
        assert await conn.fetchval(_PROGRESS_ROWS, segment_id) == 2  # kept with the segment

        api_settings = settings.model_copy(update={"interval_worker": False})
        key = (await create_key(conn, name="ops", role=Role.BUREAU, scope=None)).key
        async with in_process_api(api_settings) as http:  # details need a key
            ready = await http.get("/readyz", headers={"X-API-Key": key})
            spool_check = ready.json()["checks"]["spool"]
        assert spool_check["ok"] is True
        assert "1 damaged segment(s) set aside" in spool_check["detail"]

        # An operator repairs the segment and puts it back: only the record that was not
        # replayed is replayed now; nothing of the others is inserted again.
        skipped_before = _metric("meterhub_spool_replay_skipped_records_total")
        kept.unlink()
        again = tmp_path / "again"
        again.mkdir()
        (again / segment.name).write_bytes(original)
        async with IngestSink(sink_settings.model_copy(update={"spool_dir": again})) as sink:
            await sink.wait_replayed(timeout=60)
        assert await scenario.outcome(conn) == scenario.expected([0, 1, 2])
        assert _metric("meterhub_spool_replay_skipped_records_total") == skipped_before + 2
        assert not any(again.rglob("*.seg"))
        assert not await conn.fetchval(_PROGRESS_ROWS, segment_id)
    finally:
        await conn.close()


async def _backend_waiting_for_a_lock(conn: asyncpg.Connection) -> int:
    async with asyncio.timeout(30):
        while True:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.05)


async def test_a_replay_interrupted_half_way_inserts_nothing_twice(
    sink_settings: Settings, tmp_path: Path
) -> None:
    """The replay commits batch 0, then waits on a row another transaction holds while
    writing batch 1; its connection is killed there (a database restart, as far as it can
    tell). It reconnects and resumes at batch 1."""
    scenario, conn = await _scenario(sink_settings)
    blocker = await asyncpg.connect(sink_settings.dsn())
    try:
        spool_dir = tmp_path / "spool"
        segment = _spool_batches(spool_dir, [scenario.batch(n) for n in range(3)])
        segment_id = scan_segment(segment).segment_id
        held = blocker.transaction()
        await held.start()
        a = scenario.meters[0]
        await blocker.execute(
            "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, 0, 'held')",
            a,
            scenario.ts(1, 0),
        )
        settings = sink_settings.model_copy(update={"spool_dir": spool_dir})
        async with IngestSink(settings) as sink:
            replaying = await _backend_waiting_for_a_lock(conn)
            assert await scenario.outcome(conn) == scenario.expected([0])  # batch 0 is in
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", replaying)
            await held.rollback()
            await sink.wait_replayed(timeout=60)
        assert await scenario.outcome(conn) == scenario.expected([0, 1, 2])
        assert not any(spool_dir.rglob("*.seg"))
        assert not await conn.fetchval(_PROGRESS_ROWS, segment_id)  # forgotten once removed
    finally:
        await blocker.close()
        await conn.close()


async def test_an_unreadable_record_with_a_good_checksum_is_set_aside_too(
    sink_settings: Settings, tmp_path: Path
) -> None:
    scenario, conn = await _scenario(sink_settings)
    try:
        spool_dir = tmp_path / "spool"
        spool = Spool(spool_dir, max_bytes=2**30)
        spool.append(batch_codec.encode(scenario.batch(0)))
        spool.append(b"written by something that is not this codec")
        spool.append(batch_codec.encode(scenario.batch(2)))
        spool.release()
        records_before = _metric("meterhub_spool_corrupt_records_total")
        async with IngestSink(sink_settings.model_copy(update={"spool_dir": spool_dir})) as sink:
            await sink.wait_replayed(timeout=60)
        assert await scenario.outcome(conn) == scenario.expected([0, 2])
        assert len(list((spool_dir / "corrupt").glob("*.seg"))) == 1
        assert _metric("meterhub_spool_corrupt_records_total") == records_before + 1
    finally:
        await conn.close()

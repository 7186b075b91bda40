"""The derivation's Prometheus figures against the real database: the dirty backlog's
gauges (ranges, oldest age) and the committed -> queryable histogram."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from ingest.dirty_marks import backlog
from ingest.interval_worker import derive_pending, prepare_connection
from ingest.registry import MeterRegistry
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from tests.ingest.conftest import create_meters
from tests.support import derive_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=LOCAL_TZ)
LATENCY = "meterhub_intervals_queryable_latency_seconds"


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


async def test_backlog_gauges_and_queryable_latency_follow_a_pass(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    await derive_all(db)  # what earlier tests left
    meters = await create_meters(db, 3)
    for step in range(2):  # two batches: two marks of three ranges each
        ts = T0 + timedelta(minutes=15 * step)
        await sink.submit([Reading(m, ts, energy=100.0 + step, source="t") for m in meters])
    await asyncio.sleep(0.3)  # the oldest mark ages

    pending = await backlog(db)
    assert pending.ranges == 6 and pending.oldest_age >= 0.3
    assert _sample("meterhub_intervals_dirty_ranges") == 6
    assert _sample("meterhub_intervals_dirty_oldest_age_seconds") >= 0.3

    count, total = _sample(f"{LATENCY}_count"), _sample(f"{LATENCY}_sum")
    await prepare_connection(db)
    stats = await derive_pending(db, MeterRegistry())
    assert stats.marks == 6
    assert _sample(f"{LATENCY}_count") == count + 2  # one observation per reading batch
    assert _sample(f"{LATENCY}_sum") - total >= 2 * 0.3  # each at least its age

    await backlog(db)
    assert _sample("meterhub_intervals_dirty_ranges") == 0
    assert _sample("meterhub_intervals_dirty_oldest_age_seconds") == 0

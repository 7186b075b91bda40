"""The bounded neighbour look-ups of derivation against the readings they must find."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.neighbours import LOOKBACK, NEAR, nearest
from meterhub.reading import LOCAL_TZ
from tests.ingest.conftest import create_meters

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 20, 12, 0, tzinfo=LOCAL_TZ)
DAY = timedelta(days=1)


async def _insert(db: asyncpg.Connection, meter: int, ts: datetime, energy: float | None) -> None:
    await db.execute(
        "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, $3, 'test')",
        meter,
        ts,
        energy,
    )


async def test_nearest_finds_neighbours_near_and_far_and_none_past_the_lookback(
    db: asyncpg.Connection,
) -> None:
    busy, sparse, silent = await create_meters(db, 3)
    # busy: every quarter hour around T0, and one power-only reading (no energy) just before.
    for k in range(-8, 9):
        await _insert(db, busy, T0 + k * timedelta(minutes=15), 100.0 + k)
    await db.execute(
        "UPDATE readings SET energy = NULL WHERE meter_id = $1 AND ts = $2",
        busy,
        T0 - timedelta(minutes=15),
    )
    # sparse: beyond the near reach on both sides, and once beyond the lookback.
    assert 3 * DAY > NEAR and 40 * DAY > LOOKBACK
    for ts in (T0 - 40 * DAY, T0 - 3 * DAY, T0, T0 + 2 * DAY):
        await _insert(db, sparse, ts, 5.0)

    meters = [busy, sparse, silent, sparse, busy]
    times = [T0, T0, T0, T0 - 3 * DAY, T0 + timedelta(hours=3)]
    before = await nearest(db, meters, times, after=False, inclusive=False)
    assert before == [
        T0 - timedelta(minutes=30),  # the energy-less reading is skipped
        T0 - 3 * DAY,  # found by the far look-up
        None,
        None,  # the reading 37 days earlier is past the lookback: a new series
        T0 + timedelta(hours=2),  # the busy meter's last
    ]
    at_or_before = await nearest(db, meters, times, after=False, inclusive=True)
    assert at_or_before == [T0, T0, None, T0 - 3 * DAY, T0 + timedelta(hours=2)]
    after = await nearest(db, meters, times, after=True, inclusive=False)
    assert after == [T0 + timedelta(minutes=15), T0 + 2 * DAY, None, T0, None]
    at_or_after = await nearest(db, meters, times, after=True, inclusive=True)
    assert at_or_after == [T0, T0, None, T0 - 3 * DAY, None]
    assert await nearest(db, [], [], after=True, inclusive=True) == []

"""Hourly rollups summed from a pass's own intervals: against a plain reference with the SQL
aggregate's semantics (pure), and in the database against the SQL aggregate itself after
passes with late readings, gaps and a ratio change."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.bulk_intervals import BulkDerivation
from ingest.hour_rollups import hour_sums
from ingest.interval_grid import from_micros, to_micros
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from tests.ingest.conftest import create_meters
from tests.support import derive_all

T0 = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)
Q = timedelta(minutes=15)
NAN = float("nan")


@st.composite
def derivations(draw: st.DrawFn) -> BulkDerivation:
    rows: list[tuple[int, int, float, list[float], bool]] = []
    for meter in sorted(draw(st.sets(st.integers(1, 50), max_size=4))):
        for k in sorted(draw(st.sets(st.integers(0, 200), max_size=30))):
            tariffs = [draw(st.sampled_from([NAN, 0.0, 0.1, 1.7])) for _ in range(4)]
            energy = draw(st.floats(0, 1e4, allow_nan=False))
            rows.append((meter, to_micros(T0 + k * Q), energy, tariffs, draw(st.booleans())))
    return BulkDerivation(
        meter_id=np.array([r[0] for r in rows], dtype=np.int64),
        start=np.array([r[1] for r in rows], dtype=np.int64),
        energy=np.array([r[2] for r in rows], dtype=np.float64),
        tariffs=np.array([r[3] for r in rows], dtype=np.float64).reshape(-1, 4).T.copy(),
        estimated=np.array([r[4] for r in rows], dtype=bool),
        complete=np.ones(len(rows), dtype=bool),
        events=[],
    )


def reference(d: BulkDerivation) -> dict[tuple[int, datetime], tuple[object, ...]]:
    """GROUP BY meter, hour with sum() skipping NULLs, in start order."""
    groups: dict[tuple[int, datetime], list[int]] = defaultdict(list)
    for i in range(len(d.meter_id)):
        start = from_micros(int(d.start[i])).astimezone(LOCAL_TZ)
        groups[(int(d.meter_id[i]), start.replace(minute=0))].append(i)
    out: dict[tuple[int, datetime], tuple[object, ...]] = {}
    for key, members in groups.items():
        energy = 0.0
        estimated = 0.0
        for i in members:
            energy += float(d.energy[i])
            estimated += float(d.energy[i]) if d.estimated[i] else 0.0
        tariffs: list[float | None] = []
        for j in range(4):
            known = [float(d.tariffs[j, i]) for i in members if not math.isnan(d.tariffs[j, i])]
            total = None
            for value in known:
                total = value if total is None else total + value
            tariffs.append(total)
        out[key] = (energy, *tariffs, estimated, len(members))
    return out


@settings(max_examples=200, deadline=None, database=None)
@given(derivations())
def test_hour_sums_are_the_sql_aggregate(d: BulkDerivation) -> None:
    sums = hour_sums(d)
    got: dict[tuple[int, datetime], tuple[object, ...]] = {}
    for i in range(len(sums.meter_id)):
        tariffs = [None if math.isnan(x) else float(x) for x in sums.tariffs[:, i]]
        key = (int(sums.meter_id[i]), from_micros(int(sums.bucket[i])).astimezone(LOCAL_TZ))
        got[key] = (
            float(sums.energy[i]),
            *tariffs,
            float(sums.estimated[i]),
            int(sums.intervals[i]),
        )
    assert got == reference(d)


_SQL_HOURS = """
SELECT i.meter_id, time_bucket('1 hour', i.start, 'Asia/Shanghai') AS bucket,
       sum(i.energy) AS energy, sum(i.sharp) AS sharp, sum(i.peak) AS peak,
       sum(i.flat) AS flat, sum(i.valley) AS valley,
       coalesce(sum(i.energy) FILTER (WHERE i.estimated), 0) AS estimated,
       count(*) AS intervals
FROM intervals i WHERE i.meter_id = ANY($1::bigint[]) GROUP BY 1, 2 ORDER BY 1, 2
"""
_STORED_HOURS = """
SELECT meter_id, bucket, energy, sharp, peak, flat, valley, estimated, intervals
FROM meter_rollups WHERE granularity = 'hour' AND meter_id = ANY($1::bigint[])
ORDER BY 1, 2
"""


def _rows(records: list[asyncpg.Record]) -> list[tuple[object, ...]]:
    return [
        tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in r.values())
        for r in records
    ]


@pytest.mark.integration
async def test_stored_hours_equal_the_sql_aggregate_after_late_and_out_of_order_passes(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    meters = await create_meters(db, 3)
    rng = random.Random(5)
    readings = [
        Reading(
            meter_id=m,
            ts=T0 + timedelta(minutes=7 * k + rng.randrange(5)),
            energy=100.0 + 0.9 * k,
            energy_peak=40.0 + 0.3 * k if k % 5 else None,
            source="t",
        )
        for m in meters
        for k in range(300)
        if rng.random() > 0.1  # gaps
    ]
    late = readings[::9]
    on_time = [r for r in readings if r not in late]
    for i in range(0, len(on_time), 97):  # many passes, windows ending anywhere
        await sink.submit(on_time[i : i + 97])
        await derive_all(db)
    await db.execute(
        "INSERT INTO meter_ratios (meter_id, valid_from, ct_ratio, pt_ratio) VALUES ($1, $2, 3, 1)",
        meters[0],
        T0 + timedelta(hours=9, minutes=30),
    )
    await db.execute(
        "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs) "
        "VALUES (ARRAY[$1::bigint], ARRAY[$2::timestamptz], ARRAY[$2::timestamptz])",
        meters[0],
        T0 + timedelta(hours=9, minutes=31),
    )
    await sink.submit(late)  # late readings: windows inside already derived hours
    await derive_all(db)
    expected = await db.fetch(_SQL_HOURS, meters)
    assert len(expected) > 30
    assert _rows(await db.fetch(_STORED_HOURS, meters)) == _rows(expected)

"""Town rollups equal the sum of their firms' intervals, each firm counted for the town it
belonged to at the bucket's start: after derivation, a late reading, a move, a backdated
correction of a firm's periods, and two passes over one town at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.interval_worker import prepare_connection
from ingest.rollups import CREATE_WINDOWS, WINDOWS, refresh_rollups
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from tests.support import create_meters, derive_all, ensure_town

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)
Row = tuple[str, datetime, float, int]

# Every town's buckets summed straight from the intervals, the town taken at each bucket's
# start: what town_rollups must hold.
_FROM_INTERVALS = """
WITH b AS (
    SELECT g.granularity, m.firm_id, m.utility, i.energy,
           time_bucket(g.width, i.start, 'Asia/Shanghai') AS bucket
    FROM intervals i JOIN meters m ON m.id = i.meter_id,
         (VALUES ('day', interval '1 day'), ('month', interval '1 month')) AS g(granularity, width)
)
SELECT b.granularity, b.bucket, sum(b.energy) AS energy, count(DISTINCT b.firm_id) AS firms
FROM b JOIN firm_towns ft ON ft.firm_id = b.firm_id
                         AND b.bucket >= ft.valid_from AND b.bucket < ft.valid_to
WHERE ft.town = $1 AND b.utility = 'electricity'
GROUP BY 1, 2 ORDER BY 1, 2
"""
_STORED = """
SELECT granularity, bucket, energy, firms FROM town_rollups
WHERE town = $1 AND utility = 'electricity' ORDER BY 1, 2
"""


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=LOCAL_TZ)


def town() -> str:
    return f"汇总镇{uuid.uuid4().hex[:6]}"


async def rows(db: asyncpg.Connection, sql: str, name: str) -> list[Row]:
    return [
        (r["granularity"], r["bucket"], round(r["energy"], 9), r["firms"])
        for r in await db.fetch(sql, name)
    ]


async def assert_exact(db: asyncpg.Connection, *towns: str) -> dict[str, list[Row]]:
    """Each town's rollups against the intervals; returns them."""
    found = {}
    for name in towns:
        stored = await rows(db, _STORED, name)
        assert stored == await rows(db, _FROM_INTERVALS, name), name
        found[name] = stored
    return found


async def firm_of(db: asyncpg.Connection, meter: int) -> int:
    firm: int = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", meter)
    return firm


def climbing(meter: int, start: datetime, count: int, step: float) -> list[Reading]:
    return [
        Reading(meter_id=meter, ts=start + i * Q, energy=100 + i * step, source="t")
        for i in range(count)
    ]


async def test_derived_and_late_readings_sum_exactly(
    sink: IngestSink, db: asyncpg.Connection
) -> None:
    name = town()
    await ensure_town(db, name)
    (a,), (b1, b2) = await create_meters(db, 1, town=name), await create_meters(db, 2, town=name)
    # Across a local midnight and a month's end; b1 has a gap at first.
    start = at(1, 31, 22)
    readings = climbing(a, start, 17, 1.5) + climbing(b2, start, 17, 0.25)
    readings += [r for r in climbing(b1, start, 17, 0.5) if r.ts != start + 5 * Q]
    await sink.submit(readings)
    await derive_all(db)
    first = (await assert_exact(db, name))[name]
    assert [(g, bucket) for g, bucket, _, _ in first] == [
        ("day", at(1, 31)),
        ("day", at(2, 1)),
        ("month", at(1, 1)),
        ("month", at(2, 1)),
    ]
    assert first[0][3] == 2  # two firms

    # A late reading far from the others (a new day) and one that fills b1's gap with a
    # different value: both change the sums, which stay exact.
    await sink.submit([Reading(meter_id=b1, ts=start + 5 * Q, energy=200.0, source="late")])
    await sink.submit(climbing(a, at(2, 3, 9), 5, 2.0))
    await derive_all(db)
    second = (await assert_exact(db, name))[name]
    assert second != first
    assert ("day", at(2, 3)) in [(g, bucket) for g, bucket, _, _ in second]


async def test_a_move_takes_only_the_buckets_from_the_move_on(db: asyncpg.Connection) -> None:
    old, new = town(), town()
    for name in (old, new):
        await ensure_town(db, name)
    (mover,), (stayer,) = await create_meters(db, 1, town=old), await create_meters(db, 1, town=old)
    today = datetime.now(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    past, future = today - timedelta(days=3), today + timedelta(days=2)
    for meter, energy in ((mover, 5.0), (stayer, 1.0)):
        # Intervals written directly, as the interval worker would: a future day too.
        await seed(db, meter, [(past + timedelta(hours=9), energy), (future, energy * 2)])
    before = await assert_exact(db, old, new)
    assert before[new] == []

    await db.execute("UPDATE firms SET town = $2 WHERE id = $1", await firm_of(db, mover), new)
    after = await assert_exact(db, old, new)
    assert [(g, b, e) for g, b, e, _ in after[new] if g == "day"] == [("day", future, 10.0)]
    assert ("day", past, 6.0, 2) in after[old]  # the past stays with the old town
    assert ("day", future, 2.0, 1) in after[old]


async def test_a_backdated_period_moves_the_past_and_a_rename_keeps_it(
    db: asyncpg.Connection,
) -> None:
    old, new = town(), town()
    for name in (old, new):
        await ensure_town(db, name)
    (meter,) = await create_meters(db, 1, town=old)
    firm = await firm_of(db, meter)
    days = [at(3, d, 12) for d in range(1, 6)]
    await seed(db, meter, [(d, float(n + 1)) for n, d in enumerate(days)])
    # The firm is found to have belonged to the new town since 3 March (a correction).
    async with db.transaction():
        await db.execute(
            "UPDATE firm_towns SET valid_to = $2 WHERE firm_id = $1 AND valid_to = 'infinity'",
            firm,
            at(3, 3),
        )
        await db.execute(
            "INSERT INTO firm_towns (firm_id, valid_from, town) VALUES ($1, $2, $3)",
            firm,
            at(3, 3),
            new,
        )
    moved = await assert_exact(db, old, new)
    assert [e for g, _, e, _ in moved[old] if g == "day"] == [1.0, 2.0]
    assert [e for g, _, e, _ in moved[new] if g == "day"] == [3.0, 4.0, 5.0]
    assert [(g, e) for g, _, e, _ in moved[old] if g == "month"] == [("month", 15.0)]

    renamed = f"{new}改"
    scratch = db.transaction()  # rolled back: other tests count the towns
    await scratch.start()
    try:
        await db.execute("UPDATE towns SET name = $2 WHERE name = $1", new, renamed)
        assert (await assert_exact(db, renamed))[renamed] == moved[new]
    finally:
        await scratch.rollback()


async def test_two_passes_over_one_town_at_once_both_count(
    settings: Settings, db: asyncpg.Connection
) -> None:
    name = town()
    await ensure_town(db, name)
    (a,), (b,) = await create_meters(db, 1, town=name), await create_meters(db, 1, town=name)
    day = at(4, 7, 10)
    # Another town's interval first: the chunk of that day exists (its creation, which
    # TimescaleDB serialises, would otherwise make the second pass wait for the first).
    away = town()
    await ensure_town(db, away)
    (elsewhere,) = await create_meters(db, 1, town=away)
    await seed(db, elsewhere, [(day, 1.0)])
    other = await asyncpg.connect(settings.dsn())
    try:
        first = db.transaction()
        await first.start()
        await write_and_refresh(db, a, [(day, 3.0)])  # holds the town's lock until commit
        second = asyncio.create_task(one_pass(other, b, [(day, 4.0)]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waits for the town
        await first.commit()
        await second
    finally:
        await other.close()
    assert (await assert_exact(db, name))[name] == [
        ("day", at(4, 7), 7.0, 2),
        ("month", at(4, 1), 7.0, 2),
    ]


async def one_pass(db: asyncpg.Connection, meter: int, rows: list[tuple[datetime, float]]) -> None:
    async with db.transaction():
        await write_and_refresh(db, meter, rows)


async def seed(db: asyncpg.Connection, meter: int, rows: list[tuple[datetime, float]]) -> None:
    await one_pass(db, meter, rows)


async def write_and_refresh(
    db: asyncpg.Connection, meter: int, rows: list[tuple[datetime, float]]
) -> None:
    """Intervals and their window written, rollups refreshed: a pass, inside a transaction."""
    await prepare_connection(db)
    await db.copy_records_to_table(
        "intervals",
        records=[(meter, start, energy) for start, energy in rows],
        columns=("meter_id", "start", "energy"),
    )
    await db.execute(CREATE_WINDOWS)
    starts = [start for start, _ in rows]
    await db.copy_records_to_table(WINDOWS, records=[(meter, min(starts), max(starts) + Q)])
    await refresh_rollups(db)

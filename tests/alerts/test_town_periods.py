"""The weekly run judges a firm under the town it belonged to in that week (`firm_towns`)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import asyncpg
import pytest

from alerts.inputs import Window, load
from tests.support import create_meters, ensure_town

pytestmark = pytest.mark.integration


def monday(weeks_from_now: int) -> date:
    today = date.today()
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_from_now)


async def town_of(db: asyncpg.Connection, firm: int, week: date) -> str:
    inputs = await load(db, Window(week), night_hours=[])
    towns = inputs.firms.filter(inputs.firms["firm_id"] == firm)["town"].to_list()
    assert len(towns) == 1
    return str(towns[0])


async def test_a_moved_firm_keeps_its_past_weeks_town(db: asyncpg.Connection) -> None:
    await ensure_town(db, "义亭")
    (meter,) = await create_meters(db, 1, town="苏溪")
    firm = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", meter)
    await db.execute("UPDATE firms SET town = '义亭' WHERE id = $1", firm)
    assert await town_of(db, firm, monday(-3)) == "苏溪"
    assert await town_of(db, firm, monday(1)) == "义亭"
    # Moved twice in one transaction: one new period, the last town.
    async with db.transaction():
        await db.execute("UPDATE firms SET town = '佛堂' WHERE id = $1", firm)
        await db.execute("UPDATE firms SET town = '上溪' WHERE id = $1", firm)
    periods = await db.fetch(
        "SELECT town FROM firm_towns WHERE firm_id = $1 ORDER BY valid_from", firm
    )
    assert [p["town"] for p in periods] == ["苏溪", "义亭", "上溪"]
    assert await town_of(db, firm, monday(-3)) == "苏溪"


async def test_a_renamed_town_is_no_move(db: asyncpg.Connection) -> None:
    old, new = f"改名前{uuid.uuid4().hex[:6]}", f"改名后{uuid.uuid4().hex[:6]}"
    scratch = db.transaction()  # rolled back: other tests count Yiwu's 14 towns
    await scratch.start()
    try:
        await ensure_town(db, old)
        (meter,) = await create_meters(db, 1, town=old)
        firm = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", meter)
        await db.execute("UPDATE towns SET name = $2 WHERE name = $1", old, new)
        periods = await db.fetch("SELECT town FROM firm_towns WHERE firm_id = $1", firm)
        assert [p["town"] for p in periods] == [new]
    finally:
        await scratch.rollback()

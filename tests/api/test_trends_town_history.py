"""A firm that moves town leaves its past weeks with the town it was in (`firm_towns`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, seed, unique_town

pytestmark = pytest.mark.integration


def monday(weeks_from_now: int) -> date:
    today = date.today()
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_from_now)


def noon(day: date) -> datetime:
    return at(day.year, day.month, day.day, 12)


async def series(http: httpx.AsyncClient, keys: Keys, **params: Any) -> list[tuple[Any, ...]]:
    span = {"start": monday(-2).isoformat(), "end": monday(3).isoformat()}
    response = await http.get(
        "/v1/trends/series",
        params={"granularity": "week", **span, **params},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 200, response.text
    return [(b.get("group"), b["bucket"][:10], b["energy"]) for b in response.json()["buckets"]]


async def test_a_move_keeps_past_weeks_in_the_old_town(
    http: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    old_town, new_town = unique_town(), unique_town()
    mover, stayer = await new_firm(db, town=old_town), await new_firm(db, town=old_town)
    await new_firm(db, town=new_town)
    mover_meter, stayer_meter = await new_meter(db, mover), await new_meter(db, stayer)
    past, future = monday(-2), monday(2)
    await seed(db, mover_meter, [(noon(past), 10.0), (noon(future), 3.0)])
    await seed(db, stayer_meter, [(noon(past), 1.0), (noon(future), 2.0)])

    before = await series(http, keys, scope="town", id=old_town)
    moved = await http.patch(
        f"/v1/firms/{mover}", json={"town": new_town}, headers=keys.headers("bureau")
    )
    assert moved.status_code == 200, moved.text
    # The future week's rollups already exist; they count for the town valid then.
    await seed(db, mover_meter, [(noon(future) + timedelta(hours=1), 4.0)])

    weeks = [monday(w).isoformat() for w in range(-2, 3)]
    assert before == [
        (None, w, e) for w, e in zip(weeks, [11.0, None, None, None, 5.0], strict=True)
    ]
    assert await series(http, keys, scope="town", id=old_town) == [
        (None, w, e) for w, e in zip(weeks, [11.0, None, None, None, 2.0], strict=True)
    ]
    assert await series(http, keys, scope="town", id=new_town) == [
        (None, w, e) for w, e in zip(weeks, [None, None, None, None, 7.0], strict=True)
    ]
    by_town = [
        row
        for row in await series(http, keys, scope="city", breakdown="town")
        if row[0] in (old_town, new_town) and row[2] is not None
    ]
    assert sorted(by_town) == sorted(
        [(old_town, weeks[0], 11.0), (old_town, weeks[4], 2.0), (new_town, weeks[4], 7.0)]
    )
    history = await db.fetch(
        "SELECT town, valid_to = 'infinity' AS current FROM firm_towns WHERE firm_id = $1 "
        "ORDER BY valid_from",
        mover,
    )
    assert [(h["town"], h["current"]) for h in history] == [(old_town, False), (new_town, True)]

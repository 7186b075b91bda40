"""Production state from load: each firm's week against the median of its previous weeks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from alerts.trends.production import Rule, production_state
from alerts.trends.scope import Target
from api.trends.schemas import ProductionOut
from meterhub.reading import LOCAL_TZ, Utility
from meterhub.settings import Settings
from tests.api.conftest import Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, seed, unique_town
from tests.support import in_process_api

pytestmark = pytest.mark.integration

WEEK = "2025-W10"  # Monday 3 March 2025; the baseline weeks are W06-W09
W10 = at(2025, 3, 3)


def wednesday(weeks_before: int) -> datetime:
    return W10 - timedelta(weeks=weeks_before) + timedelta(days=2, hours=10)


# firm -> (energy by weeks before W10 (0 = W10 itself), meter installed, meter removed)
PLAN: dict[str, dict[int, float]] = {
    "A": {4: 100, 3: 100, 2: 120, 1: 80, 0: 70},  # median 100, 70 -> 0.7: running
    "B": {4: 100, 3: 100, 2: 100, 1: 100, 0: 50},  # 0.5: reduced
    "C": {4: 100, 3: 100, 2: 100, 1: 100, 0: 10},  # 0.1: reduced (the boundary)
    "D": {4: 100, 3: 100, 2: 100, 1: 100, 0: 5},  # 0.05: stopped
    "E": {2: 40, 1: 60, 0: 50},  # two baseline weeks, median 50: running
    "F": {4: 100, 3: 100, 2: 100, 1: 100},  # no data this week: unknown
    "G": {0: 30},  # no baseline: unknown
    "H": {4: 0, 3: 0, 2: 0, 1: 0, 0: 0},  # zero baseline, zero now: stopped
    "X": {5: 1000, 4: 10, 0: 10},  # W05 is outside the baseline: median 10, running
}


@pytest.fixture
async def town(db: asyncpg.Connection) -> tuple[str, dict[str, int]]:
    town = unique_town()
    firms = {}
    for name, weeks in PLAN.items():
        firm = await new_firm(db, town=town, name=f"生产状态{name}")
        await seed(db, await new_meter(db, firm), [(wednesday(w), e) for w, e in weeks.items()])
        firms[name] = firm
    # Not judged: a meter removed before the week, and one installed after it.
    removed = await new_firm(db, town=town)
    meter = await new_meter(db, removed)
    await db.execute("UPDATE meters SET removed_at = $2 WHERE id = $1", meter, at(2025, 3, 1))
    await seed(db, meter, [(wednesday(1), 100.0)])
    late = await new_firm(db, town=town)
    await new_meter(db, late, installed=at(2025, 3, 10))
    return town, firms


async def states(http: httpx.AsyncClient, keys: Keys, **params: Any) -> dict[str, Any]:
    response = await http.get(
        "/v1/trends/production-state",
        params={"week": WEEK, **params},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    ProductionOut.model_validate(body)
    return body


def names(body: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    return [(r["name"].removeprefix("生产状态"), r["state"], r["ratio"]) for r in body["items"]]


async def test_classification(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, dict[str, int]]
) -> None:
    body = await states(http, keys, town=town[0])
    assert (body["start"], body["end"], body["complete"]) == (
        "2025-03-03T00:00:00+08:00",
        "2025-03-10T00:00:00+08:00",
        True,
    )
    assert body["rule"] == {"baseline_weeks": 4, "running_ratio": 0.7, "stopped_ratio": 0.1}
    assert body["counts"] == {"running": 3, "reduced": 2, "stopped": 2, "unknown": 2}
    assert body["shares"] == {"running": 0.428571, "reduced": 0.285714, "stopped": 0.285714}
    assert names(body) == [
        ("A", "running", 0.7),
        ("E", "running", 1.0),
        ("X", "running", 1.0),
        ("B", "reduced", 0.5),
        ("C", "reduced", 0.1),
        ("D", "stopped", 0.05),
        ("H", "stopped", None),
        ("F", "unknown", None),
        ("G", "unknown", None),
    ]
    by_name = {r["name"].removeprefix("生产状态"): r for r in body["items"]}
    assert (by_name["A"]["energy"], by_name["A"]["baseline"], by_name["A"]["baseline_weeks"]) == (
        70.0,
        100.0,
        4,
    )
    assert (by_name["X"]["baseline"], by_name["X"]["baseline_weeks"]) == (10.0, 1)
    stopped = await states(http, keys, town=town[0], state="stopped")
    assert (stopped["total"], names(stopped)) == (
        2,
        [("D", "stopped", 0.05), ("H", "stopped", None)],
    )
    assert stopped["counts"] == body["counts"]


async def test_thresholds_come_from_settings(
    api_settings: Settings, keys: Keys, town: tuple[str, dict[str, int]]
) -> None:
    strict = api_settings.model_copy(update={"production_running_ratio": 0.8})
    async with in_process_api(strict) as http:
        body = await states(http, keys, town=town[0], limit=2)
    assert body["counts"] == {"running": 2, "reduced": 3, "stopped": 2, "unknown": 2}
    assert names(body) == [("E", "running", 1.0), ("X", "running", 1.0)]


async def test_a_week_in_progress_is_judged_on_its_elapsed_part(
    settings: Settings, town: tuple[str, dict[str, int]]
) -> None:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    assert pool is not None
    try:
        now = W10 + timedelta(days=2, hours=12)  # 2.5 of 7 days
        frame, elapsed = await production_state(
            pool, Target(town=town[0]), week=W10, utility=Utility.ELECTRICITY, rule=Rule(), now=now
        )
    finally:
        await pool.close()
    assert elapsed == 2.5 / 7
    rows = {
        n.removeprefix("生产状态"): (s, r)
        for n, s, r in frame.select("name", "state", "ratio").iter_rows()
    }
    assert rows["A"] == ("running", 1.96)  # 70 / (100 x 2.5 / 7)
    assert rows["D"] == ("reduced", 0.14)  # 5 / (100 x 2.5 / 7)


async def test_default_week_future_week_and_town_keys(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, dict[str, int]]
) -> None:
    response = await http.get("/v1/trends/production-state", headers=keys.headers("town"))
    assert response.status_code == 200
    body = response.json()
    last = datetime.now(LOCAL_TZ) - timedelta(weeks=1)
    year, week, _ = last.isocalendar()
    assert (body["week"], body["town"], body["complete"]) == (f"{year}-W{week:02d}", "苏溪", True)
    response = await http.get(
        "/v1/trends/production-state", params={"town": town[0]}, headers=keys.headers("town")
    )
    assert response.status_code == 403
    future = datetime.now(LOCAL_TZ) + timedelta(weeks=2)
    year, week, _ = future.isocalendar()
    response = await http.get(
        "/v1/trends/production-state",
        params={"week": f"{year}-W{week:02d}"},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 422
    for bad in ("2025-10", "2025-W54", "2025W10"):
        response = await http.get(
            "/v1/trends/production-state", params={"week": bad}, headers=keys.headers("bureau")
        )
        assert response.status_code == 422, bad

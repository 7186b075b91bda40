"""The live ingest health page: the derivation backlog and the interval worker it shows are
what /readyz reports (dirty marks made here and left underived: the test API runs no
worker), in Chinese and in English; without a key, the worker's state is not shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from meterhub.settings import Settings
from tests.dashboard.browser import login, ready
from tests.dashboard.conftest import City

pytestmark = pytest.mark.integration

#: Marks of a meter no test registers, marked this many seconds ago, oldest first (the
#: backlog's oldest is its first mark).
AGES = (700, 400, 90, 5)


@pytest.fixture
async def dirty_marks(settings: Settings) -> AsyncIterator[list[int]]:
    db = await asyncpg.connect(settings.dsn())
    try:
        rows = await db.fetch(
            "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs, marked_at) "
            "SELECT '{-7}', ARRAY[now() - interval '1 hour'], ARRAY[now()], "
            "now() - make_interval(secs => a) "
            "FROM unnest($1::int[]) WITH ORDINALITY AS m(a, n) ORDER BY n RETURNING id",
            list(AGES),
        )
        ids = [r["id"] for r in rows]
        yield ids
        await db.execute("DELETE FROM interval_dirty WHERE id = ANY($1)", ids)
    finally:
        await db.close()


async def _intervals(base_url: str, key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as http:
        body = (await http.get("/readyz")).json()
    intervals: dict[str, Any] = body["checks"]["intervals"]
    return intervals


async def _open(page: Page, key: str) -> None:
    """Log in (the health page itself needs no key, so it has no login form), then open it."""
    await login(page, key)
    await ready(page, "overview")
    await page.get_by_test_id("nav-health").click()
    await ready(page, "health")


def _age_zh(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} 秒"
    if s < 3600:
        return f"{s // 60} 分 {s % 60} 秒"
    return f"{s // 3600:,} 小时 {s % 3600 // 60} 分"


async def _card(page: Page, name: str) -> dict[str, str | None]:
    """A card's value attributes and its texts, read at one instant (the page refreshes)."""
    found: dict[str, str | None] = await page.get_by_test_id(f"health-{name}").evaluate(
        """(card) => {
          const v = card.querySelector('.value');
          return { value: v.dataset.value ?? null, oldest: v.dataset.oldest ?? null,
                   state: v.dataset.state ?? null, text: v.innerText,
                   sub: card.querySelector('.sub').innerText };
        }"""
    )
    return found


async def test_the_backlog_shown_is_the_api_s(
    page: Page, base_url: str, city: City, dirty_marks: list[int], settings: Settings
) -> None:
    api = await _intervals(base_url, city.bureau)
    assert api["ranges"] >= len(AGES)
    await _open(page, city.bureau)
    await expect(page.get_by_role("heading", name="采集健康（实时）")).to_be_visible()
    dirty = page.get_by_test_id("health-dirty")
    await expect(dirty.locator(".value")).to_have_attribute("data-value", str(api["ranges"]))
    card = await _card(page, "dirty")
    assert card["text"] == f"{api['ranges']:,}"
    shown_age = float(card["oldest"] or "nan")
    assert shown_age == pytest.approx(api["oldest_age_seconds"], abs=5)  # a refresh apart
    assert f"最早一段已等待 {_age_zh(shown_age)}" in (card["sub"] or "")
    # The database as /readyz checks it (not a writer's gauge that starts at 0).
    await expect(page.get_by_test_id("health-database")).to_contain_text("正常")
    # The worker: this test API derives nothing itself (interval_worker off).
    assert api["worker"]["state"] == "elsewhere"
    worker = await _card(page, "worker")
    assert worker["state"] == api["worker"]["state"]
    assert worker["text"] == "不在本进程"
    assert "meterhub derive" in (worker["sub"] or "")
    # A range derived (here: deleted, as a pass would) leaves the figure on the next refresh.
    db = await asyncpg.connect(settings.dsn())
    try:
        await db.execute("DELETE FROM interval_dirty WHERE id = $1", dirty_marks[-1])
    finally:
        await db.close()
    await expect(dirty.locator(".value")).to_have_attribute(
        "data-value", str(api["ranges"] - 1), timeout=10_000
    )
    assert (await _intervals(base_url, city.bureau))["ranges"] == api["ranges"] - 1


async def test_the_health_page_in_english(
    page: Page, base_url: str, city: City, dirty_marks: list[int]
) -> None:
    await _open(page, city.bureau)
    await page.get_by_test_id("lang-switch").click()
    await ready(page, "health")
    try:
        await expect(page.get_by_role("heading", name="Ingest health (live)")).to_be_visible()
        card = await _card(page, "dirty")
        api = await _intervals(base_url, city.bureau)
        assert card["value"] == str(api["ranges"])
        assert (card["sub"] or "").startswith("oldest waiting ")
        await expect(page.get_by_test_id("health-worker")).to_contain_text("Interval worker")
        await expect(page.get_by_test_id("health-worker")).to_contain_text("not in this process")
    finally:
        await page.get_by_test_id("lang-switch").click()  # back, for the tests after
        await ready(page, "health")


async def test_without_a_key_the_worker_is_not_shown(
    page: Page, base_url: str, city: City, dirty_marks: list[int]
) -> None:
    """/readyz gives an anonymous caller its checks' `ok` only: no worker card; the backlog
    is the gauges /metrics exports to anyone, set by the last backlog query."""
    await page.goto("/#/health")
    await ready(page, "health")
    await expect(page.get_by_test_id("health-dirty")).to_be_visible()
    assert await page.get_by_test_id("health-worker").count() == 0
    api = await _intervals(base_url, city.bureau)
    await expect(page.get_by_test_id("health-dirty").locator(".value")).to_have_attribute(
        "data-value", str(api["ranges"]), timeout=10_000
    )


async def test_both_languages_have_every_health_string(page: Page, base_url: str) -> None:
    await page.goto("/#/health")
    keys = await page.evaluate(
        """async () => {
          const zh = (await import('/static/dashboard/i18n/zh.js')).default;
          const en = (await import('/static/dashboard/i18n/en.js')).default;
          return [Object.keys(zh.health).sort(), Object.keys(en.health).sort()];
        }"""
    )
    assert keys[0] == keys[1]
    assert {"dirty_oldest", "worker", "worker_elsewhere", "worker_running"} <= set(keys[0])

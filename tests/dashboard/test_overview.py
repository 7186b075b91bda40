"""The city overview shows the API's own figures, in Chinese by default, and switches to
English; a chart is drawn and the page is ready within the budget."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.dashboard.browser import login, ready
from tests.dashboard.conftest import ISO_WEEK, City

pytestmark = pytest.mark.integration


async def test_overview_shows_the_api_figures(page: Page, base_url: str, city: City) -> None:
    await login(page, city.bureau, f"#/overview?week={ISO_WEEK}")
    await ready(page, "overview")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    await expect(page.get_by_role("heading", name="全市概览")).to_be_visible()

    start, end = "2025-12-01", "2026-12-01"  # the 12 months up to the week's month
    params = {"scope": "city", "start": start, "end": end, "granularity": "month", "compare": "yoy"}
    headers = {"X-API-Key": city.bureau}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        series = (await http.get("/v1/trends/series", params=params)).json()
        found = (
            await http.get("/v1/findings", params={"week": "2026-11-23", "limit": 1000})
        ).json()
        terminals = (await http.get("/v1/terminals", params={"limit": 1})).json()
    energy = page.get_by_test_id("kpi-energy")
    assert float(await energy.get_attribute("data-value") or "nan") == pytest.approx(
        series["total"]["energy"]
    )
    assert f"{round(series['total']['energy']):,}" in await energy.inner_text()
    assert int(await page.get_by_test_id("kpi-findings").inner_text()) == found["total"]
    assert (
        int(await page.get_by_test_id("kpi-online").get_attribute("data-value") or -1)
        == (terminals["online"])
    )
    # The findings-by-town table counts this week's findings of the seeded towns.
    by_town = page.get_by_test_id("findings-by-town")
    for town in ("稠江", "义亭"):
        expected = sum(1 for f in found["items"] if f["town"] == town)
        assert expected > 0
        row = by_town.locator("tr", has=page.get_by_role("link", name=town, exact=True))
        await expect(row.locator("td").last).to_have_text(str(expected))
    # The trend chart is drawn (ECharts renders SVG) with one bar per month.
    assert await page.locator("#trend svg").count() == 1
    assert int(await page.locator("main").get_attribute("data-ms") or 10_000) < 1_000


async def test_switch_to_english(page: Page, city: City) -> None:
    await login(page, city.bureau, f"#/overview?week={ISO_WEEK}")
    await ready(page, "overview")
    await page.get_by_test_id("lang-switch").click()
    await ready(page, "overview")
    assert await page.locator("html").get_attribute("lang") == "en"
    await expect(page.get_by_role("heading", name="City overview")).to_be_visible()
    await expect(page.get_by_test_id("nav-findings")).to_have_text("Findings")
    await page.get_by_test_id("lang-switch").click()  # back, for the tests after
    await ready(page, "overview")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"

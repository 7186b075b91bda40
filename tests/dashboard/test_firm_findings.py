"""A firm's page and the findings list with filters, each against the API's own answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.alerts.city import WEEK
from tests.dashboard.browser import login, ready
from tests.dashboard.conftest import ISO_WEEK, TOWN, City

pytestmark = pytest.mark.integration


async def _api(base_url: str, key: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as http:
        response = await http.get(path, params=params)
        response.raise_for_status()
        return response.json()


async def test_open_a_firm(page: Page, base_url: str, city: City) -> None:
    firm = city.firms["dash-stoppage"]
    profile = await _api(base_url, city.bureau, f"/v1/firms/{firm}/profile", week=str(WEEK))
    await login(page, city.bureau, f"#/firm/{firm}?week={ISO_WEEK}")
    await ready(page, "firm")
    await expect(page.get_by_test_id("firm-name")).to_have_text(profile["firm"]["name"])
    load = await _api(
        base_url,
        city.bureau,
        "/v1/trends/series",
        scope="firm",
        id=str(firm),
        start=str(WEEK),
        end="2026-11-30",
        granularity="hour",
    )
    assert len(load["buckets"]) == 168
    total = await page.get_by_test_id("load-total").get_attribute("data-value")
    assert float(total or "nan") == pytest.approx(load["total"]["energy"])
    rows = page.get_by_test_id("open-findings").locator("tbody tr")
    await expect(rows).to_have_count(len(profile["open_findings"]))
    assert profile["open_findings"], "the stoppage firm has an open finding"
    await expect(page.get_by_test_id("open-findings")).to_contain_text("疑似停产")
    await expect(page.get_by_test_id("energy-table").locator("tbody tr")).to_have_count(
        len(profile["energy"])
    )
    await expect(page.get_by_test_id("firm-notice-items")).to_contain_text("疑似停产")
    # 15-minute granularity: the same week in 672 buckets, the same total.
    await page.get_by_test_id("granularity").select_option("15min")
    await page.get_by_role("button", name="查询").click()
    await page.wait_for_url("**granularity=15min**")
    await ready(page, "firm")
    again = await page.get_by_test_id("load-total").get_attribute("data-value")
    assert float(again or "nan") == pytest.approx(load["total"]["energy"])


async def test_filter_findings(page: Page, base_url: str, city: City) -> None:
    await login(page, city.bureau, "#/findings")
    await ready(page, "findings")
    await page.get_by_test_id("filter-town").select_option(TOWN)
    await page.get_by_test_id("filter-severity").select_option("high")
    await page.get_by_test_id("filter-week").fill(ISO_WEEK)
    await page.get_by_test_id("filter-apply").click()
    await page.wait_for_url("**severity=high**")
    await ready(page, "findings")
    expected = await _api(
        base_url, city.bureau, "/v1/findings", town=TOWN, severity="high", week=str(WEEK)
    )
    assert expected["total"] > 0
    shown = page.get_by_test_id("findings-total")
    assert int(await shown.get_attribute("data-value") or -1) == expected["total"]
    rows = page.get_by_test_id("findings-table").locator("tbody tr")
    await expect(rows).to_have_count(expected["total"])
    for i in range(expected["total"]):
        await expect(rows.nth(i).locator("td").nth(1)).to_have_text(TOWN)
        await expect(rows.nth(i).locator(".badge")).to_have_text("高")
    # A rule filter that matches nothing in the seeded towns leaves the table empty.
    await page.get_by_test_id("filter-rule").select_option("two_high")
    await page.get_by_test_id("filter-apply").click()
    await page.wait_for_url("**rule=two_high**")
    await ready(page, "findings")
    await expect(page.get_by_test_id("findings-table-empty")).to_be_visible()

"""The weekly notice: a town key acts on its own town's items only, the print view is
Chinese in a CJK font, campaign progress shows the plan's targets the API gives, and the
health page reads the metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.dashboard.browser import login, ready, shot
from tests.dashboard.conftest import ISO_WEEK, OTHER_TOWN, TOWN, City

pytestmark = pytest.mark.integration


async def _items(base_url: str, key: str, town: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as http:
        response = await http.get(f"/v1/notices/{ISO_WEEK}/items", params={"town": town})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items


async def _case_status(base_url: str, key: str, case: int) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as http:
        response = await http.get(f"/v1/notice-cases/{case}")
        response.raise_for_status()
        status: str = response.json()["case"]["status"]
        return status


async def test_town_key_acknowledges_its_own_item(page: Page, base_url: str, city: City) -> None:
    own = [i for i in await _items(base_url, city.bureau, TOWN) if i["status"] == "issued"]
    other = await _items(base_url, city.bureau, OTHER_TOWN)
    assert own and other
    case = own[0]["case_id"]
    await login(page, city.town, f"#/notice?week={ISO_WEEK}")
    await ready(page, "notice")
    await expect(page.get_by_test_id(f"items-{TOWN}")).to_be_visible()
    await expect(page.get_by_test_id(f"items-{OTHER_TOWN}")).to_have_count(0)
    button = page.get_by_test_id(f"act-acknowledge-{case}")
    await expect(button).to_be_visible()
    await expect(page.get_by_test_id(f"act-escalate-{case}")).to_have_count(0)  # bureau only
    await button.click()
    await ready(page, "notice")
    await expect(page.get_by_test_id(f"current-{case}")).to_have_text("已签收")
    await expect(page.get_by_test_id(f"act-feedback-{case}")).to_be_visible()
    assert await _case_status(base_url, city.bureau, case) == "acknowledged"

    # Another town's case: refused, and no button offered.
    foreign = other[0]["case_id"]
    before = await _case_status(base_url, city.bureau, foreign)
    await page.goto(f"/#/case/{foreign}")
    await ready(page, "case")
    await expect(page.get_by_test_id("case-refused")).to_be_visible()
    await expect(page.locator("button[data-action]")).to_have_count(0)
    assert await _case_status(base_url, city.bureau, foreign) == before


async def test_feedback_asks_for_a_note(page: Page, base_url: str, city: City) -> None:
    [item] = [i for i in await _items(base_url, city.bureau, OTHER_TOWN)][:1]
    case = item["case_id"]
    await login(page, city.other_town, f"#/case/{case}")
    await ready(page, "case")
    await page.get_by_test_id(f"act-acknowledge-{case}").click()
    await ready(page, "case")
    await page.get_by_test_id(f"act-feedback-{case}").click()
    dialog = page.locator("#note-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="确定").click()
    await expect(page.locator("#note-error")).to_have_text("请填写说明。")
    await page.locator("#note-text").fill("已安排设备检修，下周恢复生产")
    await dialog.get_by_role("button", name="确定").click()
    await ready(page, "case")
    history = page.get_by_test_id("case-history")
    await expect(history).to_contain_text("已安排设备检修")
    await expect(page.get_by_test_id("case-status")).to_have_text("整改中")


async def test_print_view_is_chinese_in_a_cjk_font(page: Page, city: City) -> None:
    await login(page, city.bureau, f"#/notice?week={ISO_WEEK}&print=1")
    await ready(page, "notice")
    doc = page.get_by_test_id("notice-doc")
    await expect(page.get_by_test_id("notice-number")).to_have_text("义经信高耗〔2026〕第48期")
    text = await doc.inner_text()
    assert "各镇街汇总" in text and "整改期限" in text
    await page.emulate_media(media="print")
    assert await page.locator("header.top").is_hidden()
    await shot(page, "notice-print")
    # The glyphs really come from a CJK font: ask the renderer which fonts drew the title.
    cdp = await page.context.new_cdp_session(page)
    root = await cdp.send("DOM.getDocument")
    node = await cdp.send(
        "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": ".doc-title"}
    )
    await cdp.send("CSS.enable")
    fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    used = {f["familyName"]: f["glyphCount"] for f in fonts["fonts"]}
    assert any("WenQuanYi" in name and n > 0 for name, n in used.items()), used
    box = await page.locator(".doc-title").bounding_box()
    assert box is not None and box["width"] > 100


async def test_campaign_and_health(page: Page, base_url: str, city: City) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": city.bureau}) as http:
        campaign = await http.get("/v1/campaign")
    await login(page, city.bureau, "#/campaign")
    await ready(page, "campaign")
    assert campaign.status_code == 200, campaign.text
    await expect(page.get_by_test_id("campaign-unavailable")).to_have_count(0)
    # The plan's targets as the API gives them, e.g. 300 firms rectified.
    rectified = next(t for t in campaign.json()["targets"] if t["code"] == "rectified")
    await expect(page.locator("body")).to_contain_text(rectified["zh"])
    await expect(page.locator("body")).to_contain_text(f"{rectified['target']:,}".replace(",", ""))
    await page.goto("/#/health")
    await ready(page, "health")
    await expect(page.get_by_test_id("ready-checks")).to_contain_text("database")
    await expect(page.get_by_test_id("health-queue")).to_be_visible()
    # The second scrape (1 s apart in test mode) turns the counter into a rate.
    await expect(page.get_by_test_id("health-readings-rate").locator(".value")).to_have_text(
        "0.0", timeout=5_000
    )

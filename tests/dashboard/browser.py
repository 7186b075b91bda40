"""Debian's Chromium driven by Playwright: never a downloaded browser (deploy/browser.sh
installs /usr/bin/chromium and a CJK font)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
#: Screenshots of every browser test (git-ignored with .run/).
ARTIFACTS = Path(os.environ.get("MHUB_TEST_ARTIFACTS", ".run/test-artifacts/dashboard"))


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)


async def new_context(browser: Browser, base_url: str) -> BrowserContext:
    context = await browser.new_context(
        base_url=base_url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    await context.add_init_script("window.MHUB_TEST = true;")
    return context


async def login(page: Page, key: str, hash_: str = "#/overview") -> None:
    """Open the dashboard at ``hash_`` and log in with ``key`` through the form."""
    await page.goto(f"/{hash_}")
    await page.get_by_test_id("login-key").fill(key)
    await page.get_by_test_id("login-submit").click()


async def ready(page: Page, name: str) -> None:
    """Wait until page ``name`` has rendered its data."""
    await page.wait_for_selector(f"main[data-ready='{name}']", timeout=15_000)


async def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path

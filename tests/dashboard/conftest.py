"""A seeded city (two towns of its own), its week judged and its notice issued, the API on
127.0.0.1 and one Chromium for all browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from alerts import rulebook
from alerts.notices import config as notice_config
from alerts.notices.generate import generate
from alerts.weekly import run_week
from meterhub.settings import Settings
from registry.keys import Role, create_key
from tests.alerts.city import WEEK, FirmPlan, seed_city
from tests.alerts.test_weekly import changed, stopped, surge
from tests.dashboard import browser as chromium
from tests.dashboard.server import serve

TOWN, OTHER_TOWN = "稠江", "义亭"  # towns no other test seeds
ISO_WEEK = "{}-W{:02d}".format(*WEEK.isocalendar()[:2])


@dataclass(frozen=True)
class City:
    firms: dict[str, int]
    bureau: str
    town: str  # a key of TOWN
    other_town: str  # a key of OTHER_TOWN


_LOAD_WEEK = """
WITH q AS (
  SELECT m.id AS meter_id, f.firm_id,
         (f.day::timestamp + make_interval(hours => h.h - 1, mins => 15 * k.k))
           AT TIME ZONE 'Asia/Shanghai' AS start,
         f.hourly[h.h] / 4 AS energy
  FROM firm_day_features f JOIN meters m ON m.firm_id = f.firm_id,
       generate_series(1, 24) AS h(h), generate_series(0, 3) AS k(k)
  WHERE f.firm_id = $1 AND f.day >= $2 AND f.day < $2 + 7 AND f.hourly[h.h] <> 'NaN'
), ins AS (
  INSERT INTO intervals (meter_id, start, energy) SELECT meter_id, start, energy FROM q
)
INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, estimated, meters)
SELECT 'hour', firm_id, 'electricity', date_trunc('hour', start), sum(energy), 0, 1
FROM q GROUP BY firm_id, date_trunc('hour', start)
"""


async def _load_curve(db: asyncpg.Connection, firm: int) -> None:
    """The judged week of ``firm`` as 15-minute intervals and hourly rollups (the seeded
    city has daily features only), from its hourly features."""
    await db.execute(_LOAD_WEEK, firm, WEEK)


@pytest.fixture(scope="session")
async def city(settings: Settings) -> City:
    if not chromium.CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `bash deploy/browser.sh` (make test does)")
    db = await asyncpg.connect(settings.dsn())
    try:
        own = await seed_city(
            db,
            [
                FirmPlan("dash-normal"),
                FirmPlan("dash-stoppage", daily=changed(201, stopped)),
                FirmPlan("dash-surge", daily=changed(202, surge)),
            ],
            town=TOWN,
        )
        await _load_curve(db, own["dash-stoppage"])
        other = await seed_city(
            db, [FirmPlan("dash-other", daily=changed(203, stopped))], town=OTHER_TOWN
        )

        async def key(role: Role, scope: str | None = None) -> str:
            return (await create_key(db, name=f"dash {role}", role=role, scope=scope)).key

        keys = (
            await key(Role.BUREAU),
            await key(Role.TOWN, TOWN),
            await key(Role.TOWN, OTHER_TOWN),
        )
    finally:
        await db.close()
    book = rulebook.load(settings.rules_file)
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        await run_week(pool, week=WEEK, settings=settings, rulebook=book)
        await generate(
            pool,
            week=WEEK,
            config=notice_config.load(settings.notice_file),
            rulebook=book,
            settings=settings,
        )
    finally:
        await pool.close()
    return City(firms=own | other, bureau=keys[0], town=keys[1], other_town=keys[2])


@pytest.fixture(scope="session")
def base_url(
    settings: Settings, city: City, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    spool = Path(tmp_path_factory.mktemp("dashboard")) / "spool"
    api = settings.model_copy(update={"spool_dir": spool, "interval_worker": False})
    with serve(api) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await chromium.launch(playwright)
        yield launched
        await launched.close()


@pytest.fixture
async def page(
    browser: Browser, base_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    context = await chromium.new_context(browser, base_url)
    opened = await context.new_page()
    yield opened
    path = await chromium.shot(opened, request.node.name)
    print(f"screenshot: {path.resolve()}")
    await context.close()

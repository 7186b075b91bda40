"""The exports of a notice generated from a real database: every item in the HTML with its
trend line, the workbook read back, a town's part holding no other town's firm."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import asyncpg
import polars as pl
import pytest

from alerts.notices.exports import Kind, content_disposition, render
from alerts.notices.exports.xlsx import SUMMARY_SHEET
from meterhub.settings import Settings
from tests.alerts.test_notice_exports import parse
from tests.alerts.test_notices import issue, judged, new_firm

pytestmark = pytest.mark.integration

WEEK = date(2031, 6, 2)  # a Monday no other test judges
TOWN, OTHER = "江东", "苏溪"


@pytest.fixture
async def pool(settings: Settings, db: asyncpg.Connection) -> Any:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    yield pool
    await pool.close()
    # The session's database is shared: WEEK must not count as a judged week for the
    # metered checks of other tests' cases (they look at every later analytics run).
    await db.execute("DELETE FROM analytics_runs WHERE week = $1", WEEK)


async def metered(db: asyncpg.Connection, firm: int, *, skip_week: int) -> None:
    """Eight weeks of daily kWh up to WEEK, but none in the ``skip_week``-th week."""
    for w in range(8):
        if w == skip_week:
            continue
        monday = WEEK - timedelta(weeks=7 - w)
        for d in range(7):
            await db.execute(
                "INSERT INTO firm_day_features (firm_id, day, energy, intervals, expected, "
                "hourly) VALUES ($1, $2, $3, 96, 96, array_fill(0.0::float8, ARRAY[24]))",
                firm,
                monday + timedelta(days=d),
                1000.0 + 50 * w + d,
            )


async def test_exports_of_a_generated_notice(
    pool: asyncpg.Pool, settings: Settings, db: asyncpg.Connection
) -> None:
    mine = await new_firm(db, "导出两高企业")
    stopped = await new_firm(db, "导出停产企业")
    elsewhere = await new_firm(db, "导出他镇企业", OTHER)
    for firm in (mine, stopped, elsewhere):
        await metered(db, firm, skip_week=2)
    await judged(
        db,
        WEEK,
        [(mine, "two_high"), (stopped, "suspected_stoppage"), (elsewhere, "two_high")],
    )
    issued = await issue(pool, settings, WEEK)
    text = await db.fetchval(
        "SELECT content FROM notices WHERE week = $1 AND revision = $2", WEEK, issued.revision
    )
    document = json.loads(text)
    items = [i for t in document["towns"] for i in t["items"]]
    by_firm = {i["firm_id"]: i for i in items}
    assert {mine, stopped, elsewhere} <= set(by_firm)
    trend = by_firm[mine]["figures"]["trend_kwh"]
    assert trend[2] is None and all(v is not None for v in trend[3:])

    html = render(Kind.HTML, document)
    page = parse(html)
    body = "".join(page.text)
    for item in items:
        assert item["firm"] in body and item["problem_zh"] in body
    assert sum(1 for t, a in page.tags if t == "section" and a["class"] == "town") == len(
        document["towns"]
    )
    assert sum(1 for t, _ in page.tags if t == "svg") == len(items)
    assert sum(1 for t, _ in page.tags if t == "polyline") >= 2 * 3  # a gap splits each line
    assert b"http://" not in html and b"https://" not in html
    assert render(Kind.HTML, json.loads(text)) == html

    data = render(Kind.XLSX, document)
    sheets = pl.read_excel(io.BytesIO(data), sheet_id=0, raise_if_empty=False)
    assert isinstance(sheets, dict)
    assert list(sheets) == [SUMMARY_SHEET] + [t["town"] for t in document["towns"]]
    own = sheets[TOWN]
    assert set(own["企业名称"].to_list()) >= {by_firm[mine]["firm"], by_firm[stopped]["firm"]}
    assert own["本周用电量（kWh）"].dtype.is_numeric()
    row = own.filter(pl.col("企业名称") == by_firm[mine]["firm"])
    assert row["本周用电量（kWh）"].to_list() == [by_firm[mine]["figures"]["week_kwh"]]
    assert render(Kind.XLSX, json.loads(text)) == data

    for kind in Kind:
        part = render(kind, document, OTHER)
        if kind is Kind.XLSX:
            sheets = pl.read_excel(io.BytesIO(part), sheet_id=0, raise_if_empty=False)
            assert isinstance(sheets, dict) and list(sheets) == [SUMMARY_SHEET, OTHER]
            firms = sheets[OTHER]["企业名称"].to_list()
            assert by_firm[elsewhere]["firm"] in firms
            assert not {by_firm[mine]["firm"], by_firm[stopped]["firm"]} & set(firms)
        else:
            assert by_firm[elsewhere]["firm"] in part.decode()
            assert by_firm[mine]["firm"] not in part.decode()
            assert by_firm[stopped]["firm"] not in part.decode()
    disposition = content_disposition(Kind.XLSX, document, revision=issued.revision, town=OTHER)
    assert disposition.isascii() and f"r{issued.revision}_t14.xlsx" in disposition

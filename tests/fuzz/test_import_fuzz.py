"""Sheet imports under hypothesis (the holiday calendar as the example kind), CSV in UTF-8
or GB18030 and XLSX, good and bad rows, whole or ``partial=true``, against a real
`meterhub serve`: never a 5xx; 200 only when every row was good or the import was
partial, and then exactly the good rows are stored; 422 ``invalid_rows`` with every bad row
listed, and nothing stored."""

from __future__ import annotations

import asyncio
import io
import itertools
from datetime import date, timedelta

import asyncpg
import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.sheets import XLSX_TYPES
from tests.fuzz.conftest import LiveApi

pytestmark = pytest.mark.integration

QUICK = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
SOAK = settings(
    max_examples=800, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
XLSX = next(iter(XLSX_TYPES))
HEADER = ["日期", "类型", "名称", "来源"]
D0 = date(2300, 1, 1)
_windows = itertools.count()  # each example its own 20 days

good_kinds = st.sampled_from(["holiday", "workday", "shutdown", "调休上班", "停工期"])
bad_kinds = st.sampled_from(["", "party", "x\x00"])
bad_days = st.sampled_from(["2300-02-30", "tomorrow", "", "0000-00-00"])


@st.composite
def rows(draw: st.DrawFn, *, first: date) -> tuple[list[list[str]], set[date]]:
    """Sheet rows and the days of the good ones."""
    out, good = [], set()
    offsets = draw(st.permutations(range(20)))  # one row a day: a repeated day is a bad row
    for offset in offsets[: draw(st.integers(1, 8))]:
        bad = draw(st.sampled_from(["none", "none", "day", "kind", "source"]))
        day = first + timedelta(days=offset)
        row = [
            draw(bad_days) if bad == "day" else day.isoformat(),
            draw(bad_kinds) if bad == "kind" else draw(good_kinds),
            draw(st.text("春节元旦端午 fuzz", min_size=1, max_size=8)).strip() or "节",
            "" if bad == "source" else "fuzz (test)",
        ]
        out.append(row)
        if bad == "none":
            good.add(day)
    return out, good


def _csv(table: list[list[str]], charset: str) -> bytes:
    text = "".join(",".join(cells) + "\n" for cells in table)
    return text.encode(charset, "replace")


def _xlsx(table: list[list[str]]) -> bytes:
    frame = pl.DataFrame({name: [r[i] for r in table[1:]] for i, name in enumerate(table[0])})
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    return buffer.getvalue()


async def _days(dsn: str, first: date) -> set[date]:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT day FROM holidays WHERE day >= $1 AND day < $1 + 20", first
        )
        return {r["day"] for r in found}
    finally:
        await conn.close()


def _import_and_check(live: LiveApi, data: st.DataObject) -> None:
    first = D0 + timedelta(days=20 * next(_windows))
    sheet, good = data.draw(rows(first=first))
    table = [HEADER, *sheet]
    kind = data.draw(st.sampled_from(["utf-8", "gb18030", "xlsx"]))
    partial = data.draw(st.booleans())
    body = _xlsx(table) if kind == "xlsx" else _csv(table, kind)
    media_type = XLSX if kind == "xlsx" else "text/csv"
    headers = {"X-API-Key": live.keys["bureau"], "Content-Type": media_type}
    with httpx.Client(base_url=live.url, timeout=60) as http:
        response = http.post(
            "/v1/reference/holidays/import",
            params={"partial": str(partial).lower()},
            content=body,
            headers=headers,
        )
    stored = asyncio.run(_days(live.dsn, first))
    answer = response.json()
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert answer["written"] is True
        assert partial or not answer["errors"], "bad rows answered 200 without partial=true"
        assert stored == good, (answer, stored, good)
        assert answer["created"] + answer["updated"] == len(good)
        assert len(answer["errors"]) == len(sheet) - len(good)
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert answer["errors"] and answer["written"] is False
        assert stored == set(), f"{len(stored)} days stored from a refused sheet"


def test_imports_store_every_good_row_or_nothing(live_api: LiveApi) -> None:
    @QUICK
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        _import_and_check(live_api, data)

    run()


@pytest.mark.slow
def test_import_soak(live_api: LiveApi) -> None:
    @SOAK
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        _import_and_check(live_api, data)

    run()

"""Reference tables through the API: edits by bureau keys (audited, refused to town keys),
reads by any person's key, sheet imports all-or-nothing or partial, and the weekly run
reading what was edited."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

import asyncpg
import httpx
import polars as pl
import pytest

from alerts import rulebook
from alerts.daytypes import DayType, day_types
from alerts.inputs import Inputs, Window, load
from tests.api.conftest import Keys

pytestmark = pytest.mark.integration

CSV = {"content-type": "text/csv"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def key_id(db: asyncpg.Connection, prefix_of: str) -> int:
    prefix = prefix_of.split("_")[1]
    return int(await db.fetchval("SELECT id FROM api_keys WHERE prefix = $1", prefix))


async def weekly_inputs(db: asyncpg.Connection, monday: date) -> Inputs:
    """What the weekly run of ``monday``'s week reads, as it reads it."""
    night = list(rulebook.load(None)["idle_load"].param("night_hours"))
    return await load(db, Window(week=monday), night_hours=night)


async def test_a_bureau_holiday_reaches_the_weekly_inputs(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    wednesday = date(2031, 3, 12)
    assert wednesday.weekday() == 2
    monday = wednesday - timedelta(days=2)
    window = Window(week=monday)
    before = day_types(window.week, window.end, (await weekly_inputs(db, monday)).holidays)
    assert before.filter(pl.col("day") == wednesday)["day_type"].item() == DayType.WORKDAY

    body = {"day": "2031-03-12", "kind": "shutdown", "name": "停电检修", "source": "镇街通知"}
    refused = await client.post("/v1/reference/holidays", json=body, headers=keys.headers("town"))
    assert refused.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM holidays WHERE day = $1", wednesday) == 0

    created = await client.post("/v1/reference/holidays", json=body, headers=keys.headers("bureau"))
    assert created.status_code == 201, created.text
    again = await client.post(
        "/v1/reference/holidays", json=body | {"name": "检修"}, headers=keys.headers("bureau")
    )
    assert again.status_code == 200 and again.json()["name"] == "检修"

    after = day_types(window.week, window.end, (await weekly_inputs(db, monday)).holidays)
    row = after.filter(pl.col("day") == wednesday)
    assert row["day_type"].item() == DayType.HOLIDAY and row["holiday"].item() == "检修"
    read = await client.get("/v1/reference/holidays?year=2031", headers=keys.headers("field"))
    assert read.status_code == 200
    assert {"day": "2031-03-12", "kind": "shutdown", "name": "检修", "source": "镇街通知"} in (
        read.json()
    )

    audit = await db.fetch(
        "SELECT action, key_id, detail->>'created' AS created FROM audit_log "
        "WHERE target = 'holiday:2031-03-12' ORDER BY id"
    )
    bureau = await key_id(db, keys.bureau)
    assert [(a["action"], a["key_id"], a["created"]) for a in audit] == [
        ("holiday.upsert", bureau, "true"),
        ("holiday.upsert", bureau, "false"),
    ]
    deleted = await client.delete(
        "/v1/reference/holidays/2031-03-12", headers=keys.headers("admin")
    )
    assert deleted.status_code == 200 and deleted.json()["name"] == "检修"
    gone = await client.delete("/v1/reference/holidays/2031-03-12", headers=keys.headers("admin"))
    assert gone.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM holidays WHERE day = $1", wednesday) == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE target = 'holiday:2031-03-12' "
            "AND action = 'holiday.delete'"
        )
        == 1
    )


HOLIDAY_SHEET = (
    "日期,类型,名称,来源\n"
    "2032-01-01,节假日,元旦,国办发明电 (test)\n"
    "2032/2/7,调休上班,春节调休,\n"  # no source: refused
    "2032年2月11日,holiday,春节,国办发明电 (test)\n"
    "2032-02-30,holiday,春节,国办发明电 (test)\n"  # no such day
)


async def test_holiday_import_is_all_or_nothing_unless_partial(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    url = "/v1/reference/holidays/import"
    refused = await client.post(url, content=HOLIDAY_SHEET, headers=CSV | keys.headers("town"))
    assert refused.status_code == 403

    whole = await client.post(url, content=HOLIDAY_SHEET, headers=CSV | keys.headers("bureau"))
    assert whole.status_code == 422, whole.text  # bad rows: nothing written, never a 200
    assert whole.headers["content-type"] == "application/problem+json"
    assert whole.json()["type"] == "/problems/invalid_rows"
    result = whole.json()
    assert result["written"] is False and result["created"] == 0
    assert {(e["row"], e["column"]) for e in result["errors"]} == {(3, "source"), (5, "day")}
    count = "SELECT count(*) FROM holidays WHERE day >= '2032-01-01' AND day < '2033-01-01'"
    assert await db.fetchval(count) == 0

    part = await client.post(
        url + "?partial=true", content=HOLIDAY_SHEET, headers=CSV | keys.headers("bureau")
    )
    assert part.json()["written"] is True and part.json()["created"] == 2
    rows = await db.fetch(
        "SELECT day, kind, name FROM holidays WHERE day >= '2032-01-01' AND day < '2033-01-01' "
        "ORDER BY day"
    )
    assert [tuple(r) for r in rows] == [
        (date(2032, 1, 1), "holiday", "元旦"),
        (date(2032, 2, 11), "holiday", "春节"),
    ]
    audit = await db.fetchrow(
        "SELECT detail FROM audit_log WHERE action = 'holiday.import' ORDER BY id DESC LIMIT 1"
    )
    assert audit is not None and '"rejected_rows": 2' in audit["detail"]

    fixed = HOLIDAY_SHEET.replace("春节调休,", "春节调休,国办发明电 (test)").replace(
        "02-30", "02-12"
    )
    again = await client.post(url, content=fixed, headers=CSV | keys.headers("bureau"))
    assert again.json() == {"written": True, "created": 2, "updated": 2, "errors": []}
    assert await db.fetchval(count) == 4


def xlsx(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    return buffer.getvalue()


async def test_grid_factor_import_from_xlsx_keeps_unit_and_source(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    region = f"test-{uuid.uuid4().hex[:6]}"
    sheet = pl.DataFrame(
        {
            "年份": ["2031", "2031", "2032"],
            "区域": [region] * 3,
            "类型": ["average", "fossil", "average"],
            "排放因子": ["0.5153", "0.81", "0.5"],
            "单位": ["kgCO2/kWh", "tCO2/MWh", "kgCO2/MWh"],  # the last is 1000x off: refused
            "来源": ["provincial notice (test)"] * 3,
        }
    )
    url = "/v1/reference/grid-factors/import"
    headers = {"content-type": XLSX} | keys.headers("bureau")
    whole = await client.post(url, content=xlsx(sheet), headers=headers)
    assert whole.json()["written"] is False
    assert [(e["row"], e["column"]) for e in whole.json()["errors"]] == [(4, "unit")]
    assert whole.status_code == 422
    part = await client.post(url + "?partial=true", content=xlsx(sheet), headers=headers)
    assert part.status_code == 200  # partial: the good rows written, the bad ones listed
    assert part.json()["created"] == 2

    listed = await client.get(
        f"/v1/reference/grid-factors?region={region}", headers=keys.headers("town")
    )
    assert listed.json() == [
        {
            "year": 2031,
            "region": region,
            "kind": "average",
            "tco2_per_mwh": 0.5153,
            "unit": "tCO2/MWh",
            "source": "provincial notice (test)",
        },
        {
            "year": 2031,
            "region": region,
            "kind": "fossil",
            "tco2_per_mwh": 0.81,
            "unit": "tCO2/MWh",
            "source": "provincial notice (test)",
        },
    ]
    path = f"/v1/reference/grid-factors/2031/{region}/fossil"
    assert (await client.delete(path, headers=keys.headers("town"))).status_code == 403
    assert (await client.delete(path, headers=keys.headers("bureau"))).status_code == 200
    left = await db.fetchval("SELECT count(*) FROM grid_emission_factors WHERE region = $1", region)
    assert left == 1


async def test_benchmarks_upsert_filter_and_refuse_bad_rows(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    indicator = f"kwh_per_10k_{uuid.uuid4().hex[:6]}"
    body = {
        "industry": "c1711",
        "year": 2031,
        "indicator": indicator,
        "value": 420.0,
        "unit": "kWh/万元",
        "source": "test",
    }
    headers = keys.headers("bureau")
    first = await client.post("/v1/reference/benchmarks", json=body, headers=headers)
    assert first.status_code == 201 and first.json()["industry"] == "C1711"
    second = await client.post(
        "/v1/reference/benchmarks", json=body | {"value": 400.0}, headers=headers
    )
    assert second.status_code == 200
    no_source = {k: v for k, v in body.items() if k != "source"}
    refused = await client.post("/v1/reference/benchmarks", json=no_source, headers=headers)
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "source"]]

    sheet = (
        "行业代码,年份,指标,值,单位,来源\n"
        f"C17,2031,{indicator},380,kWh/万元,test\n"
        f"17,2031,{indicator},380,kWh/万元,test\n"  # not a GB/T 4754 code
        f"C18,2031,{indicator},abc,kWh/万元,test\n"  # not a number
        f"C17,2031,{indicator},390,kWh/万元,test\n"  # the same key as row 2
    )
    result = await client.post(
        "/v1/reference/benchmarks/import", content=sheet.encode("gb18030"), headers=CSV | headers
    )
    assert result.json()["written"] is False
    assert [(e["row"], e["column"]) for e in result.json()["errors"]] == [
        (3, "industry"),
        (4, "value"),
        (5, None),
    ]
    listed = await client.get(
        f"/v1/reference/benchmarks?industry=C17&indicator={indicator}",
        headers=keys.headers("town"),
    )
    assert [(b["industry"], b["value"]) for b in listed.json()] == [("C1711", 400.0)]
    stored = await db.fetchval(
        "SELECT count(*) FROM industry_benchmarks WHERE indicator = $1", indicator
    )
    assert stored == 1

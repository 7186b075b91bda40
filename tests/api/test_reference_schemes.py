"""Per-mu evaluation schemes through the API: written whole, imported one row per
indicator, refused when inconsistent, kept while evaluations use them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import Keys
from tests.api.test_reference import CSV
from tests.api.test_reference_firms import new_firm

pytestmark = pytest.mark.integration


def scheme(scheme_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": scheme_id,
        "name": "测试方案 (test)",
        "year": 2031,
        "method": "ratio",
        "classing": "percentile",
        "cuts": {"A": 0.2, "B": 0.6, "C": 0.95},
        "source": "test",
        "indicators": [
            {
                "cohort": "above_scale",
                "indicator": "tax_per_mu",
                "weight": 60,
                "benchmark": 25.0,
                "unit": "万元/亩",
            },
            {
                "cohort": "above_scale",
                "indicator": "va_per_tce",
                "weight": 40,
                "benchmark": 2.7,
                "unit": "万元/吨标准煤",
                "cap": 1.5,
            },
        ],
    } | changes


async def test_a_scheme_is_written_whole_and_kept_while_used(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    scheme_id = f"test-{uuid.uuid4().hex[:8]}"
    body = scheme(scheme_id)
    url = "/v1/reference/schemes"
    assert (await client.post(url, json=body, headers=keys.headers("town"))).status_code == 403
    created = await client.post(url, json=body, headers=keys.headers("bureau"))
    assert created.status_code == 201, created.text
    read = await client.get(f"{url}/{scheme_id}", headers=keys.headers("field"))
    assert read.json() == body | {
        "indicators": [body["indicators"][0] | {"cap": None}, body["indicators"][1]]
    }

    fewer = body | {"indicators": body["indicators"][:1], "cuts": {"A": 90, "B": 70, "C": 50}}
    bad = await client.post(url, json=fewer, headers=keys.headers("bureau"))
    assert bad.status_code == 422  # percentile cuts above 1
    replaced = await client.post(
        url, json=fewer | {"classing": "bands"}, headers=keys.headers("bureau")
    )
    assert replaced.status_code == 200
    indicators = await db.fetch(
        "SELECT indicator FROM evaluation_indicators WHERE scheme_id = $1", scheme_id
    )
    assert [i["indicator"] for i in indicators] == ["tax_per_mu"]
    of_year = (await client.get(f"{url}?year=2031", headers=keys.headers("town"))).json()
    assert scheme_id in [s["id"] for s in of_year] and {s["year"] for s in of_year} == {2031}

    firm = (await new_firm(client, keys))["id"]
    await db.execute(
        "INSERT INTO evaluations (firm_id, year, source, scheme_id, cohort) "
        "VALUES ($1, 2031, 'computed', $2, 'above_scale')",
        firm,
        scheme_id,
    )
    kept = await client.delete(f"{url}/{scheme_id}", headers=keys.headers("bureau"))
    assert kept.status_code == 409 and kept.json()["type"] == "/problems/conflict"
    await db.execute("DELETE FROM evaluations WHERE scheme_id = $1", scheme_id)
    gone = await client.delete(f"{url}/{scheme_id}", headers=keys.headers("bureau"))
    assert gone.status_code == 204
    assert (
        await client.get(f"{url}/{scheme_id}", headers=keys.headers("bureau"))
    ).status_code == 404
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"scheme:{scheme_id}"
    )
    assert [a["action"] for a in actions] == ["scheme.upsert", "scheme.upsert", "scheme.delete"]


async def test_scheme_import_groups_rows_and_reports_them(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    good, bad = f"good-{uuid.uuid4().hex[:6]}", f"bad-{uuid.uuid4().hex[:6]}"
    sheet = (
        "方案,方案名称,年份,分档,来源,企业类别,指标,权重,基准值,单位,上限\n"
        f"{good},好方案 (test),2031,A=0.2;B=0.6;C=0.95,test,above_scale,tax_per_mu,60,25,万元/亩,\n"
        f"{good},,,,,above_scale,va_per_mu,40,136,万元/亩,2\n"
        f"{good},,,,,below_scale_3mu,tax_per_kwh,100,0.23,元/千瓦时,\n"
        f"{bad},坏方案 (test),2031,A=0.6;B=0.2;C=0.95,test,above_scale,tax_per_mu,60,25,万元/亩,\n"
        f"{bad},,2030,,,above_scale,va_per_mu,-1,136,万元/亩,\n"
    )
    url = "/v1/reference/schemes/import"
    whole = await client.post(url, content=sheet, headers=CSV | keys.headers("bureau"))
    assert whole.json()["written"] is False
    errors = {(e["row"], e["column"]) for e in whole.json()["errors"]}
    assert errors == {(6, "year"), (6, "weight")}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM evaluation_schemes WHERE id = ANY($1::text[])", [good, bad]
        )
        == 0
    )

    part = await client.post(
        url + "?partial=true", content=sheet, headers=CSV | keys.headers("bureau")
    )
    assert part.json()["written"] is True and part.json()["created"] == 1
    stored = (
        await client.get(f"/v1/reference/schemes/{good}", headers=keys.headers("town"))
    ).json()
    assert stored["cuts"] == {"A": 0.2, "B": 0.6, "C": 0.95}
    assert [(i["cohort"], i["indicator"], i["weight"], i["cap"]) for i in stored["indicators"]] == [
        ("above_scale", "tax_per_mu", 60.0, None),
        ("above_scale", "va_per_mu", 40.0, 2.0),
        ("below_scale_3mu", "tax_per_kwh", 100.0, None),
    ]

    fixed = sheet.replace("2030,,,above_scale,va_per_mu,-1", ",,,above_scale,va_per_mu,40")
    rising = await client.post(url, content=fixed, headers=CSV | keys.headers("bureau"))
    assert [(e["row"], e["column"]) for e in rising.json()["errors"]] == [(5, None)]
    assert "rising" in rising.json()["errors"][0]["message"]

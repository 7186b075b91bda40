"""The notices over HTTP: generation, a town's own part, items filters, transitions by
role with the allowed actions named, and the case history."""

from __future__ import annotations

from datetime import date

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from tests.alerts.test_notices import judged, new_firm
from tests.api.conftest import OTHER_TOWN, TOWN, Keys

pytestmark = pytest.mark.integration

WEEK = date(2030, 4, 1)
ISO = "2030-W14"


@pytest.fixture(scope="module")
async def firms(settings: Settings) -> dict[str, int]:
    db = await asyncpg.connect(settings.dsn())
    try:
        own = await new_firm(db, "本镇企业", TOWN)
        other = await new_firm(db, "他镇企业", OTHER_TOWN)
        await judged(db, WEEK, [(own, "intensity_peers"), (other, "two_high")])
    finally:
        await db.close()
    return {"own": own, "other": other}


async def test_generate_read_and_act(
    http: httpx.AsyncClient, keys: Keys, firms: dict[str, int], db: asyncpg.Connection
) -> None:
    refused = await http.post(f"/v1/notices/{ISO}/generate", headers=keys.headers("town"))
    assert refused.status_code == 403
    made = await http.post(f"/v1/notices/{ISO}/generate", headers=keys.headers("bureau"))
    assert made.status_code == 200, made.text
    assert made.json()["number"] == "义经信高耗〔2030〕第14期"
    again = await http.post(f"/v1/notices/{ISO}/generate", headers=keys.headers("bureau"))
    assert again.json()["new"] is False and again.json()["revision"] == made.json()["revision"]

    whole = (await http.get(f"/v1/notices/{ISO}", headers=keys.headers("bureau"))).json()
    towns = {t["town"]: t for t in whole["content"]["towns"]}
    every = await db.fetchval("SELECT count(*) FROM towns")  # 14 seeded, and tests' own
    assert len(towns) == every >= 14 and towns[OTHER_TOWN]["items"]
    mine = (await http.get(f"/v1/notices/{ISO}", headers=keys.headers("town"))).json()
    assert [t["town"] for t in mine["content"]["towns"]] == [TOWN]
    forbidden = await http.get(
        f"/v1/notices/{ISO}", params={"town": OTHER_TOWN}, headers=keys.headers("town")
    )
    assert forbidden.status_code == 403

    items = await http.get(
        f"/v1/notices/{ISO}/items",
        params={"problem": "energy_anomaly", "status": "issued"},
        headers=keys.headers("town"),
    )
    assert [i["firm_id"] for i in items.json()] == [firms["own"]]
    own_case = items.json()[0]["case_id"]
    other_case = towns[OTHER_TOWN]["items"][0]["case_id"]

    async def act(case: int, action: str, role: str, note: str | None = None) -> httpx.Response:
        body = {"action": action, **({"note": note} if note else {})}
        return await http.post(
            f"/v1/notice-cases/{case}/transitions", json=body, headers=keys.headers(role)
        )

    cross = await act(other_case, "acknowledge", "town")
    assert cross.status_code == 403
    wrong = await act(own_case, "escalate", "town", "逾期")
    assert wrong.status_code == 409
    assert wrong.json()["allowed"] == ["acknowledge"]
    ok = await act(own_case, "acknowledge", "town")
    assert ok.json()["status"] == "acknowledged"
    history = (await http.get(f"/v1/notice-cases/{own_case}", headers=keys.headers("town"))).json()
    assert [e["action"] for e in history["events"]] == ["issue", "acknowledge"]
    assert history["events"][1]["actor"].startswith("town:")
    assert history["allowed"] == ["feedback", "resolve"]
    grid = await http.get(f"/v1/notices/{ISO}", headers=keys.headers("grid"))
    assert grid.status_code == 403


async def test_a_week_without_a_notice_is_404(http: httpx.AsyncClient, keys: Keys) -> None:
    response = await http.get("/v1/notices/2031-W02", headers=keys.headers("bureau"))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_exports_a_town_gets_its_own_part(
    http: httpx.AsyncClient, keys: Keys, firms: dict[str, int]
) -> None:
    await http.post(f"/v1/notices/{ISO}/generate", headers=keys.headers("bureau"))
    names = {}
    for firm in firms.values():
        names[firm] = (await http.get(f"/v1/firms/{firm}", headers=keys.headers("bureau"))).json()[
            "name"
        ]
    whole = await http.get(
        f"/v1/notices/{ISO}/export", params={"format": "html"}, headers=keys.headers("bureau")
    )
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"].startswith("text/html")
    assert names[firms["own"]] in whole.text and names[firms["other"]] in whole.text
    own = await http.get(
        f"/v1/notices/{ISO}/export", params={"format": "html"}, headers=keys.headers("town")
    )
    assert names[firms["own"]] in own.text and names[firms["other"]] not in own.text
    # The city's progress against the plan's targets is on the city's notice only.
    assert "三年行动目标进度" in whole.text and "三年行动目标进度" not in own.text
    sheet = await http.get(
        f"/v1/notices/{ISO}/export", params={"format": "xlsx"}, headers=keys.headers("town")
    )
    assert sheet.content[:2] == b"PK"  # a zip container: the workbook
    disposition = sheet.headers["content-disposition"]
    assert disposition.isascii() and "filename*=UTF-8''" in disposition and ".xlsx" in disposition
    other = await http.get(
        f"/v1/notices/{ISO}/export",
        params={"format": "json", "town": OTHER_TOWN},
        headers=keys.headers("town"),
    )
    assert other.status_code == 403

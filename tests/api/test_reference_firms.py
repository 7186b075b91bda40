"""A firm's dated list memberships and projects through the API: added, ended, imported by
credit code, scoped to the town, audited, and counted by the weekly run only while they run."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.api.test_reference import CSV, weekly_inputs
from tests.support import credit_code

pytestmark = pytest.mark.integration


async def new_firm(client: httpx.AsyncClient, keys: Keys, town: str = TOWN) -> dict[str, Any]:
    response = await client.post(
        "/v1/firms",
        json={
            "credit_code": credit_code(uuid.uuid4().int % 10_000_000),
            "name": "义乌市测试名单有限公司",
            "industry": "C1711",
            "town": town,
            "tags": ["D-class"],
        },
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def listed_firms(db: asyncpg.Connection, monday: date) -> set[int]:
    return set((await weekly_inputs(db, monday)).lists["firm_id"].to_list())


async def test_an_ended_membership_is_not_counted_later(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await new_firm(client, keys)
    url = f"/v1/firms/{firm['id']}/lists"
    body = {"list": "high_energy", "since": "2031-01-06", "source": "重点用能单位名单 (test)"}
    assert (await client.post(url, json=body, headers=keys.headers("town"))).status_code == 403
    added = await client.post(url, json=body, headers=keys.headers("bureau"))
    assert added.status_code == 201, added.text
    overlap = await client.post(
        url, json=body | {"since": "2031-03-01"}, headers=keys.headers("bureau")
    )
    assert overlap.status_code == 409 and overlap.json()["type"] == "/problems/conflict"
    no_source = {k: v for k, v in body.items() if k != "source"}
    assert (
        await client.post(url, json=no_source, headers=keys.headers("bureau"))
    ).status_code == 422

    early, late = date(2031, 2, 3), date(2031, 3, 3)  # Mondays
    assert firm["id"] in await listed_firms(db, early)
    assert firm["id"] in await listed_firms(db, late)

    end = f"{url}/high_energy/2031-01-06"
    refused = await client.patch(end, json={"until": "2031-02-10"}, headers=keys.headers("town"))
    assert refused.status_code == 403
    backwards = await client.patch(
        end, json={"until": "2031-01-01"}, headers=keys.headers("bureau")
    )
    assert backwards.status_code == 422
    ended = await client.patch(
        end, json={"until": "2031-02-10", "note": "整改完成"}, headers=keys.headers("bureau")
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["until"] == "2031-02-10" and ended.json()["note"] == "整改完成"
    missing = await client.patch(
        f"{url}/d_class/2031-01-06", json={"until": "2031-02-10"}, headers=keys.headers("bureau")
    )
    assert missing.status_code == 404

    assert firm["id"] in await listed_firms(db, early)  # the week of 3-9 Feb still counts
    assert firm["id"] not in await listed_firms(db, late)
    assert firm["id"] not in await listed_firms(db, early + timedelta(weeks=1))  # from 10 Feb

    own = await client.get(url, headers=keys.headers("town"))
    assert [(m["list"], m["since"], m["until"]) for m in own.json()] == [
        ("high_energy", "2031-01-06", "2031-02-10")
    ]
    other = await new_firm(client, keys, OTHER_TOWN)
    theirs = await client.get(f"/v1/firms/{other['id']}/lists", headers=keys.headers("town"))
    assert theirs.status_code == 403
    firm_read = await client.get(f"/v1/firms/{firm['id']}", headers=keys.headers("town"))
    assert firm_read.json()["tags"] == ["D-class"]  # the undated tags stay readable

    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"firm:{firm['id']}"
    )
    assert [a["action"] for a in actions] == ["firm.create", "firm.list.add", "firm.list.end"]


async def test_list_import_by_credit_code(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    one, two = await new_firm(client, keys), await new_firm(client, keys, "廿三里")
    unknown = credit_code(uuid.uuid4().int % 10_000_000)
    sheet = (
        "统一社会信用代码,名单,列入日期,移出日期,来源,备注\n"
        f"{one['credit_code']},D类,2031-01-01,2032-01-01,2030年度亩均评价 (test),\n"
        f"{two['credit_code'].lower()},高耗能,2031/1/1,,重点用能单位 (test),\n"
        f"{unknown},D类,2031-01-01,,test,\n"
        f"{one['credit_code']},d_class,2031-06-01,,test,\n"  # overlaps row 2
        f"{two['credit_code']},黑名单,2031-01-01,,test,\n"  # no such list
        f"{two['credit_code']},land_reclaim,2031-05-01,2031-04-01,test,\n"  # ends before start
    )
    url = "/v1/firms/lists/import"
    assert (
        await client.post(url, content=sheet, headers=CSV | keys.headers("town"))
    ).status_code == 403
    whole = await client.post(url, content=sheet, headers=CSV | keys.headers("bureau"))
    assert whole.json()["written"] is False
    assert [(e["row"], e["column"]) for e in whole.json()["errors"]] == [
        (4, "credit_code"),
        (5, "since"),
        (6, "list"),
        (7, None),
    ]
    count = "SELECT count(*) FROM firm_lists WHERE firm_id = ANY($1::bigint[])"
    assert await db.fetchval(count, [one["id"], two["id"]]) == 0

    part = await client.post(
        url + "?partial=true", content=sheet, headers=CSV | keys.headers("admin")
    )
    assert part.json()["created"] == 2 and len(part.json()["errors"]) == 4
    assert {one["id"], two["id"]} <= await listed_firms(db, date(2031, 3, 3))
    assert one["id"] not in await listed_firms(db, date(2032, 1, 5))

    again = await client.post(
        url + "?partial=true",
        content=sheet.replace("2032-01-01,2030", "2031-06-01,2030"),
        headers=CSV | keys.headers("bureau"),
    )
    assert again.json()["created"] == 1 and again.json()["updated"] == 2  # row 5 fits now
    lists = (
        await client.get(f"/v1/firms/{one['id']}/lists", headers=keys.headers("bureau"))
    ).json()
    assert [(m["since"], m["until"]) for m in lists] == [
        ("2031-01-01", "2031-06-01"),
        ("2031-06-01", None),
    ]


async def test_projects_added_imported_and_not_doubled(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    firm = await new_firm(client, keys, "佛堂")
    url = f"/v1/firms/{firm['id']}/projects"
    body = {
        "name": "一期",
        "commissioned_year": 2016,
        "design_tce": 5200,
        "source": "节能审查 (test)",
    }
    assert (await client.post(url, json=body, headers=keys.headers("town"))).status_code == 403
    added = await client.post(url, json=body, headers=keys.headers("bureau"))
    assert added.status_code == 201, added.text
    assert (await client.post(url, json=body, headers=keys.headers("bureau"))).status_code == 409

    sheet = (
        "统一社会信用代码,项目名称,投产年份,设计能耗,来源\n"
        f"{firm['credit_code']},一期,2017,5100,节能审查 (test)\n"
        f"{firm['credit_code']},二期扩建,2019,1200,节能审查 (test)\n"
        f"{firm['credit_code']},三期,1890,,节能审查 (test)\n"
    )
    imports = "/v1/firms/projects/import"
    whole = await client.post(imports, content=sheet, headers=CSV | keys.headers("bureau"))
    assert [(e["row"], e["column"]) for e in whole.json()["errors"]] == [(4, "commissioned_year")]
    for _ in range(2):
        part = await client.post(
            imports + "?partial=true", content=sheet, headers=CSV | keys.headers("bureau")
        )
        assert part.json()["written"] is True
    assert part.json()["created"] == 0 and part.json()["updated"] == 2
    projects = (await client.get(url, headers=keys.headers("admin"))).json()
    assert [(p["name"], p["commissioned_year"], p["design_tce"]) for p in projects] == [
        ("一期", 2017, 5100.0),
        ("二期扩建", 2019, 1200.0),
    ]
    theirs = await client.get(url, headers=keys.headers("town"))  # a 苏溪 key, a 佛堂 firm
    assert theirs.status_code == 403
    newest = (await weekly_inputs(db, date(2031, 3, 3))).projects
    row = newest.filter(newest["firm_id"] == firm["id"]).row(0, named=True)
    assert (row["newest_year"], row["projects"]) == (2019, 2)

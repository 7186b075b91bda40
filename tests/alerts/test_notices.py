"""Weekly notices across weeks: carry-over, a resolved case, a relapse, an escalation;
byte-identical regeneration; a revision that lists a late change; transitions by role."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from alerts import rulebook
from alerts.errors import MeteredCheckError, TransitionRefusedError
from alerts.notices import config as notice_config
from alerts.notices.generate import Issued, generate
from alerts.notices.lifecycle import Actor, ForbiddenCaseError, transition
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from tests.support import credit_code

pytestmark = pytest.mark.integration

# Weeks no other test judges. The metered check reads the latest judged weeks of the whole
# database, so the transitions test takes the latest week of all tests (W_LAST).
W1 = date(2033, 3, 7)
W2, W3 = (W1 + timedelta(weeks=n) for n in (1, 2))
W_LAST = date(2039, 1, 3)
TOWN, OTHER = "江东", "后宅"
TOWN_KEY = Actor(role="town", name="江东经发办", key_id=None, town=TOWN)
OTHER_KEY = Actor(role="town", name="后宅经发办", key_id=None, town=OTHER)
BUREAU = Actor(role="bureau", name="经信局", key_id=None, town=None)
CONFIG = dataclasses.replace(notice_config.load(), clean_weeks_to_resolve=1)


async def new_firm(db: asyncpg.Connection, name: str, town: str = TOWN) -> int:
    firm: int = await db.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, 'C1713', $3, 12, true) RETURNING id",
        credit_code(uuid.uuid4().int % 10_000_000),
        f"{name}{uuid.uuid4().hex[:4]}",
        town,
    )
    return firm


async def judged(db: asyncpg.Connection, week: date, hits: list[tuple[int, str]]) -> None:
    """What the weekly analytics would have stored for ``week``."""
    for firm, rule in hits:
        town = await db.fetchval("SELECT town FROM firms WHERE id = $1", firm)
        await db.execute(
            "INSERT INTO rule_hits (week, firm_id, rule, severity, town, industry, evidence) "
            "VALUES ($1, $2, $3, 'high', $4, 'C1713', $5)",
            week,
            firm,
            rule,
            town,
            json.dumps({"days": 4, "first_day": str(week), "last_day": str(week)}),
        )
    now = datetime.now(LOCAL_TZ)
    await db.execute(
        "INSERT INTO analytics_runs (week, started_at, finished_at, firms, hits) "
        "VALUES ($1, $2, $2, 0, $3)",
        week,
        now,
        len(hits),
    )


async def issue(pool: asyncpg.Pool, settings: Settings, week: date) -> Issued:
    return await generate(
        pool, week=week, config=CONFIG, rulebook=rulebook.load(), settings=settings
    )


async def act(
    pool: asyncpg.Pool, case: int, action: str, actor: Actor, *, on: date, note: str = "已整改"
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        return await transition(
            conn,
            case_id=case,
            action=action,
            actor=actor,
            note=note,
            evidence={"photos": 2},
            config=CONFIG,
            today=on,
        )


async def items(db: asyncpg.Connection, week: date, revision: int) -> dict[int, dict[str, Any]]:
    text = await db.fetchval(
        "SELECT content FROM notices WHERE week = $1 AND revision = $2", week, revision
    )
    document = json.loads(text)
    return {i["firm_id"]: i for town in document["towns"] for i in town["items"]}


@pytest.fixture
async def pool(settings: Settings) -> Any:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=3)
    yield pool
    await pool.close()


async def test_three_weeks_of_cases(
    pool: asyncpg.Pool, settings: Settings, db: asyncpg.Connection
) -> None:
    stopped = await new_firm(db, "停产企业")  # fires W1, clean W2 (resolved), fires W3
    offline = await new_firm(db, "离线企业")  # data interruption: a one-week deadline
    two_high = await new_firm(db, "两高企业")  # fires every week
    elsewhere = await new_firm(db, "他镇企业", OTHER)

    await judged(
        db,
        W1,
        [
            (stopped, "suspected_stoppage"),
            (offline, "terminal_offline"),
            (two_high, "two_high"),
            (elsewhere, "two_high"),
        ],
    )
    first = await issue(pool, settings, W1)
    assert first.new and first.revision == 1 and first.number == "义经信高耗〔2033〕第10期"
    again = await issue(pool, settings, W1)
    assert not again.new and again.digest == first.digest and again.revision == 1
    w1 = await items(db, W1, 1)
    assert {w1[f]["problem"] for f in (stopped, offline, two_high)} == {
        "suspected_stoppage",
        "data_interruption",
        "two_high",
    }
    mine = (stopped, offline, two_high, elsewhere)
    assert all(w1[f]["weeks_running"] == 1 and w1[f]["status"] == "issued" for f in mine)
    assert w1[two_high]["reasons"][0]["rule"] == "two_high"

    case = w1[stopped]["case_id"]
    assert (await act(pool, case, "acknowledge", TOWN_KEY, on=W1 + timedelta(days=1)))[
        "status"
    ] == "acknowledged"

    await judged(db, W2, [(two_high, "two_high"), (elsewhere, "two_high")])
    second = await issue(pool, settings, W2)
    w2 = await items(db, W2, 1)
    assert w2[stopped]["weeks_running"] == 2 and w2[stopped]["status"] == "acknowledged"
    assert w2[two_high]["weeks_running"] == 2
    # The data interruption's deadline (the Sunday of W1) has passed: escalated, red.
    assert (w2[offline]["status"], w2[offline]["colour"]) == ("escalated", "red")
    assert second.revision == 1

    resolved = await act(pool, case, "resolve", TOWN_KEY, on=W2 + timedelta(days=2))
    assert (resolved["status"], resolved["resolved_basis"]) == ("resolved", "clean_1_weeks")
    late = await issue(pool, settings, W2)  # the resolution is a late change to W2
    assert late.new and late.revision == 2
    assert {
        "case_id": case,
        "firm": w2[stopped]["firm"],
        "change": "changed",
        "fields": {"status": ["acknowledged", "resolved"], "colour": ["yellow", "green"]},
    } in late.changes
    assert (await items(db, W2, 2))[stopped]["status"] == "resolved"

    await judged(
        db, W3, [(stopped, "suspected_stoppage"), (two_high, "two_high"), (elsewhere, "two_high")]
    )
    await issue(pool, settings, W3)
    w3 = await items(db, W3, 1)
    assert w3[stopped]["case_id"] == case  # the same case, reopened (回头看)
    assert (w3[stopped]["reopened"], w3[stopped]["weeks_running"]) == (1, 1)
    assert w3[two_high]["weeks_running"] == 3
    history = await db.fetch(
        "SELECT action, from_status, to_status, actor FROM case_events WHERE case_id = $1 "
        "ORDER BY id",
        case,
    )
    assert [(h["action"], h["to_status"]) for h in history] == [
        ("issue", "issued"),
        ("acknowledge", "acknowledged"),
        ("carry", "acknowledged"),
        ("resolve", "resolved"),
        ("reopen", "issued"),
    ]
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("UPDATE case_events SET note = 'rewritten' WHERE case_id = $1", case)


async def test_transitions_allowed_and_refused_by_role(
    pool: asyncpg.Pool, settings: Settings, db: asyncpg.Connection
) -> None:
    firm = await new_firm(db, "整改企业")
    await judged(db, W_LAST, [(firm, "intensity_peers")])
    await issue(pool, settings, W_LAST)
    case = (await items(db, W_LAST, 1))[firm]["case_id"]
    on = W_LAST + timedelta(days=1)

    with pytest.raises(ForbiddenCaseError):
        await act(pool, case, "acknowledge", OTHER_KEY, on=on)
    with pytest.raises(TransitionRefusedError) as refused:
        await act(pool, case, "escalate", TOWN_KEY, on=on)
    assert refused.value.extra["allowed"] == ["acknowledge"]
    with pytest.raises(TransitionRefusedError) as refused:
        await act(pool, case, "feedback", TOWN_KEY, on=on)  # not acknowledged yet
    assert "acknowledge" in str(refused.value)
    await act(pool, case, "acknowledge", TOWN_KEY, on=on)
    with pytest.raises(TransitionRefusedError, match="needs a note"):
        await act(pool, case, "feedback", TOWN_KEY, on=on, note=" ")
    assert (await act(pool, case, "feedback", TOWN_KEY, on=on, note="更换空压机"))[
        "status"
    ] == "rectifying"
    # The rule fired in the only judged week since: no metered basis to close on.
    with pytest.raises(MeteredCheckError):
        await act(pool, case, "resolve", TOWN_KEY, on=on)
    assert (await act(pool, case, "escalate", BUREAU, on=on, note="逾期"))["status"] == (
        "escalated"
    )
    with pytest.raises(TransitionRefusedError) as refused:
        await act(pool, case, "acknowledge", BUREAU, on=on)
    assert refused.value.extra["allowed"] == ["feedback", "resolve"]

"""A case's lifecycle: issued -> acknowledged (by the town) -> rectifying (weekly feedback
with a note and evidence) -> resolved (the town's or the bureau's note and a metered
check), or escalated (by the bureau, or by the generator when the deadline passes).

Who may do what: a town key acts on its own town's cases (acknowledge, feedback, resolve);
the bureau and admin keys on every case, and only they escalate. Every transition is an
event (who, when, note, evidence) in ``case_events``, which is never edited. A refused
transition names the actions that are allowed.

Metered check for resolving: the problem's rules (or lists) clean in each of the last
``clean_weeks_to_resolve`` judged weeks, or the firm closed down (each of those weeks
under ``closed_kwh_per_week``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from alerts.errors import CaseNotFoundError, MeteredCheckError, TransitionRefusedError
from alerts.notices.config import NoticeConfig
from meterhub.db import Conn
from meterhub.reading import LOCAL_TZ

#: action -> (statuses it may start from, the status it leads to; None: unchanged)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "acknowledge": (frozenset({"issued"}), "acknowledged"),
    "feedback": (frozenset({"acknowledged", "rectifying", "escalated"}), None),
    "resolve": (frozenset({"acknowledged", "rectifying", "escalated"}), "resolved"),
    "escalate": (frozenset({"issued", "acknowledged", "rectifying"}), "escalated"),
}
TOWN_ACTIONS = frozenset({"acknowledge", "feedback", "resolve"})
NOTE_REQUIRED = frozenset({"feedback", "resolve", "escalate"})


@dataclass(frozen=True, slots=True)
class Actor:
    role: str  # bureau, admin, town
    name: str
    key_id: int | None
    town: str | None  # a town key's own town


class ForbiddenCaseError(TransitionRefusedError):
    """A town key acting on another town's case."""

    code = "forbidden_case"


def local_today() -> date:
    return datetime.now(LOCAL_TZ).date()


def allowed(status: str, actor: Actor) -> list[str]:
    """The actions ``actor`` may take on a case in ``status``."""
    actions = TOWN_ACTIONS if actor.role == "town" else frozenset(TRANSITIONS)
    return sorted(a for a in actions if status in TRANSITIONS[a][0])


def _next_status(action: str, status: str) -> str:
    target = TRANSITIONS[action][1]
    if target is not None:
        return target
    return "escalated" if status == "escalated" else "rectifying"


async def metered_check(
    conn: Conn, *, case: dict[str, Any], config: NoticeConfig, today: date
) -> str:
    """The basis on which the case may close by ``today``, or `MeteredCheckError` saying
    why not: only weeks judged from the case's episode up to ``today`` count."""
    weeks = config.clean_weeks_to_resolve
    judged = [
        r["week"]
        for r in await conn.fetch(
            "SELECT week FROM analytics_runs WHERE week >= $1 AND week <= $2 "
            "ORDER BY week DESC LIMIT $3",
            case["episode_week"],
            today,
            weeks,
        )
    ]
    if len(judged) < weeks:
        raise MeteredCheckError(
            f"resolving needs {weeks} judged weeks since the case opened; there are {len(judged)}",
            judged_weeks=[str(w) for w in judged],
        )
    problem = config.problems[case["problem"]]
    hits = await conn.fetch(
        "SELECT week, rule, evidence -> 'codes' AS codes FROM rule_hits "
        "WHERE firm_id = $1 AND week = ANY($2::date[])",
        case["firm_id"],
        judged,
    )
    firing = sorted(
        {
            str(h["week"])
            for h in hits
            if h["rule"] in problem.rules
            or (
                h["rule"] == "monitored_list"
                and set(json.loads(h["codes"] or "[]")) & set(problem.lists)
            )
        }
    )
    if not firing:
        return f"clean_{weeks}_weeks"
    quiet = await conn.fetchval(
        "SELECT count(*) FROM (SELECT day - (extract(isodow FROM day)::int - 1) AS week, "
        "sum(energy) AS kwh FROM firm_day_features WHERE firm_id = $1 "
        "AND day >= $2 AND day < $3::date + 7 GROUP BY 1) w WHERE w.kwh < $4",
        case["firm_id"],
        min(judged),
        max(judged),
        config.closed_kwh_per_week,
    )
    if quiet >= weeks:
        return "closed_down"
    raise MeteredCheckError(
        f"the problem's rules still fired in the judged weeks {', '.join(firing)}; resolving "
        f"needs {weeks} clean weeks or a closed-down firm",
        firing_weeks=firing,
    )


async def transition(
    conn: Conn,
    *,
    case_id: int,
    action: str,
    actor: Actor,
    note: str | None,
    evidence: dict[str, Any],
    config: NoticeConfig,
    today: date,
) -> dict[str, Any]:
    """Apply ``action`` to case ``case_id`` on ``today`` (local date); the case after it.
    Call inside a transaction."""
    case = await conn.fetchrow("SELECT * FROM notice_cases WHERE id = $1 FOR UPDATE", case_id)
    if case is None:
        raise CaseNotFoundError(f"no notice case {case_id}")
    if actor.role == "town" and case["town"] != actor.town:
        raise ForbiddenCaseError(
            f"a key for {actor.town} may not act on a case of {case['town']}", allowed=[]
        )
    permitted = allowed(case["status"], actor)
    if action not in permitted:
        raise TransitionRefusedError(
            f"{action!r} is not allowed on a case that is {case['status']}"
            + (f"; allowed: {', '.join(permitted)}" if permitted else "; nothing is allowed"),
            case_status=case["status"],
            allowed=permitted,
        )
    if action in NOTE_REQUIRED and not (note and note.strip()):
        raise TransitionRefusedError(f"{action!r} needs a note", allowed=permitted)
    basis = None
    if action == "resolve":
        basis = await metered_check(conn, case=dict(case), config=config, today=today)
    target = _next_status(action, case["status"])
    # A case resolved during a week is "closed this week" in that week's notice.
    week = today - timedelta(days=today.weekday())
    await conn.execute(
        "UPDATE notice_cases SET status = $2, updated_at = now(), "
        "resolved_week = CASE WHEN $2 = 'resolved' THEN $3::date END, "
        "resolved_basis = CASE WHEN $2 = 'resolved' THEN $4 END WHERE id = $1",
        case_id,
        target,
        week,
        basis,
    )
    await conn.execute(
        "INSERT INTO case_events (case_id, action, from_status, to_status, actor, key_id, "
        "note, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        case_id,
        action,
        case["status"],
        target,
        f"{actor.role}:{actor.name}",
        actor.key_id,
        note,
        json.dumps({**evidence, **({"basis": basis} if basis else {})}, ensure_ascii=False),
    )
    row = await conn.fetchrow("SELECT * FROM notice_cases WHERE id = $1", case_id)
    assert row is not None
    return dict(row)

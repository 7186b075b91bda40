"""Cases across weeks. Generating week W brings every case up to date, idempotently:

* a firm's problem active in W (a rule hit of that week raises it) continues its live case,
  or reopens the same case if it was resolved within the relapse window (回头看), or opens
  a new one with the problem's deadline;
* every live case is carried into W's notice whether or not its rule fired again: a case
  stays until it is resolved;
* a live case past its deadline at the end of W is escalated (by the system).

Each week's issue, carry and reopen is recorded once (a unique index), so regenerating a
week writes nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from alerts.notices.config import NoticeConfig
from meterhub.db import Conn

#: The rule hits of a week, with the list codes of monitored-list hits.
_ACTIVE = """
SELECT h.firm_id, h.rule, h.town, h.evidence -> 'codes' AS codes
FROM rule_hits h WHERE h.week = $1
"""

_LIVE = """
SELECT id, firm_id, problem, status, first_week, deadline FROM notice_cases
WHERE status <> 'resolved'
"""

_EVENT = """
INSERT INTO case_events (case_id, week, action, from_status, to_status, actor, evidence)
VALUES ($1, $2, $3, $4, $5, 'system', $6)
ON CONFLICT (case_id, week, action) WHERE action IN ('issue', 'carry', 'reopen') DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Active:
    firm_id: int
    problem: str
    town: str


def active_problems(rows: Iterable[dict[str, object]], config: NoticeConfig) -> set[Active]:
    """The (firm, problem) pairs that a week's rule hits raise."""
    found = set()
    for row in rows:
        firm, town, rule = int(str(row["firm_id"])), str(row["town"]), str(row["rule"])
        if rule == "monitored_list":
            codes = json.loads(str(row["codes"])) if row["codes"] is not None else []
            problems = [config.problem_of_list(code) for code in codes]
        else:
            problems = [config.problem_of_rule(rule)]
        found |= {Active(firm, p, town) for p in problems if p is not None}
    return found


def deadline_of(week: date, weeks: int) -> date:
    """The Sunday ending the ``weeks``-th week from ``week`` on."""
    return week + timedelta(days=7 * weeks - 1)


async def _open_or_reopen(conn: Conn, *, active: Active, week: date, config: NoticeConfig) -> None:
    deadline = deadline_of(week, config.problems[active.problem].deadline_weeks)
    relapse = await conn.fetchrow(
        "SELECT id FROM notice_cases WHERE firm_id = $1 AND problem = $2 "
        "AND status = 'resolved' AND resolved_week <= $3 AND resolved_week >= $4 "
        "ORDER BY resolved_week DESC LIMIT 1",
        active.firm_id,
        active.problem,
        week,
        week - timedelta(weeks=config.relapse_weeks),
    )
    if relapse is not None:
        await conn.execute(
            "UPDATE notice_cases SET status = 'issued', reopened = reopened + 1, "
            "resolved_week = NULL, resolved_basis = NULL, deadline = $2, "
            "last_week = greatest(last_week, $3), episode_week = $3, updated_at = now() "
            "WHERE id = $1",
            relapse["id"],
            deadline,
            week,
        )
        await conn.execute(_EVENT, relapse["id"], week, "reopen", "resolved", "issued", "{}")
        return
    case_id = await conn.fetchval(
        "INSERT INTO notice_cases (firm_id, problem, town, first_week, last_week, "
        "episode_week, deadline) VALUES ($1, $2, $3, $4, $4, $4, $5) RETURNING id",
        active.firm_id,
        active.problem,
        active.town,
        week,
        deadline,
    )
    await conn.execute(_EVENT, case_id, week, "issue", None, "issued", "{}")


async def sync(conn: Conn, *, week: date, config: NoticeConfig) -> None:
    """Bring the cases up to date for ``week`` (see the module's description)."""
    rows = [dict(r) for r in await conn.fetch(_ACTIVE, week)]
    active = active_problems(rows, config)
    live = {(r["firm_id"], r["problem"]): r for r in await conn.fetch(_LIVE)}
    for item in sorted(active, key=lambda a: (a.firm_id, a.problem)):
        if (item.firm_id, item.problem) not in live:
            await _open_or_reopen(conn, active=item, week=week, config=config)
    for case in await conn.fetch(_LIVE + " AND episode_week < $1", week):
        await conn.execute(
            "UPDATE notice_cases SET last_week = greatest(last_week, $2) WHERE id = $1",
            case["id"],
            week,
        )
        await conn.execute(_EVENT, case["id"], week, "carry", case["status"], case["status"], "{}")
    week_end = week + timedelta(days=6)
    overdue = await conn.fetch(
        "UPDATE notice_cases c SET status = 'escalated', updated_at = now() "
        "FROM (SELECT id, status FROM notice_cases "
        "      WHERE status IN ('issued', 'acknowledged', 'rectifying') AND deadline < $1 "
        "        AND first_week <= $2 FOR UPDATE) old "
        "WHERE c.id = old.id RETURNING c.id, old.status AS before, c.deadline",
        week_end,
        week,
    )
    for case in overdue:
        await conn.execute(
            "INSERT INTO case_events (case_id, week, action, from_status, to_status, actor, "
            "note) VALUES ($1, $2, 'escalate', $3, 'escalated', 'system', $4)",
            case["id"],
            week,
            case["before"],
            f"逾期未整改（期限 {case['deadline']}）",
        )

"""Which firms the cases count towards the campaign, as of a week.

* A case counts when its problem is one of the campaign's (``[counting] problems``), it is
  resolved now and was resolved in a week from ``count_from`` up to the week asked for. A
  case that relapsed (reopened, 回头看) is open again and no longer counts: the figures
  rest on the cases' current state.
* Eliminated (淘汰): a firm with a counted case resolved on the basis ``closed_down``.
* Rectified (整治提升): any other firm with a counted case resolved, and (with
  ``require_no_open_case``) no case of those problems open as of the week. The two are
  disjoint, as the plan lists them: a firm closed down is not also counted rectified.
* Each firm counts for the town of its latest counted case (the town when that case
  opened: a firm that moved keeps its cases' town).
* Land rectified: firms whose land case resolved (``land_problems``) or whose membership
  of a land list (``land_lists``) ended in the period and did not start again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from alerts.campaign_targets import CampaignConfig
from meterhub.db import Conn

CLOSED_DOWN = "closed_down"

_CASES = """
SELECT id, firm_id, problem, town, status, first_week, resolved_week, resolved_basis
FROM notice_cases WHERE problem = ANY($1::text[]) AND first_week <= $2
ORDER BY firm_id, id
"""
#: Firms whose list membership ended in [$2, $3] with no membership running on $3.
_ENDED = """
SELECT l.firm_id, max(l.until) AS until FROM firm_lists l
WHERE l.list = ANY($1::text[]) AND l.until >= $2 AND l.until <= $3
  AND NOT EXISTS (SELECT 1 FROM firm_lists m WHERE m.firm_id = l.firm_id
                  AND m.list = ANY($1::text[]) AND m.since <= $3
                  AND (m.until IS NULL OR m.until > $3))
GROUP BY l.firm_id
"""
_FIRMS = "SELECT id, town, land_mu::float8 AS land_mu FROM firms WHERE id = ANY($1::bigint[])"


@dataclass(frozen=True, slots=True)
class CountedFirm:
    firm_id: int
    town: str
    kind: str  # eliminated | rectified
    resolved_week: date
    first_opened: date  # the first week of the firm's first counted case
    case_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LandFirm:
    firm_id: int
    town: str
    land_mu: float | None
    by: str  # case | list
    on: date


def _resolved_by(case: dict[str, Any], week: date) -> bool:
    return bool(case["status"] == "resolved" and case["resolved_week"] <= week)


def counted_firms(
    cases: list[dict[str, Any]], *, week: date, config: CampaignConfig
) -> tuple[list[CountedFirm], list[tuple[int, str]]]:
    """The eliminated and rectified firms among ``cases`` (rows of ``notice_cases``), and
    the firms (with their town) with a case resolved that still wait for another open one."""
    by_firm: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        if case["problem"] in config.problems:
            by_firm[case["firm_id"]].append(case)
    counted: list[CountedFirm] = []
    waiting: list[tuple[int, str]] = []
    start = config.plan.count_from
    for firm_id, rows in sorted(by_firm.items()):
        done = [c for c in rows if _resolved_by(c, week) and c["resolved_week"] >= start]
        if not done:
            continue
        closed = [c for c in done if c["resolved_basis"] == CLOSED_DOWN]
        still_open = [c for c in rows if not _resolved_by(c, week)]
        chosen = closed or done
        last = max(chosen, key=lambda c: (c["resolved_week"], c["id"]))
        if not closed and config.require_no_open_case and still_open:
            waiting.append((firm_id, last["town"]))
            continue
        counted.append(
            CountedFirm(
                firm_id=firm_id,
                town=last["town"],
                kind="eliminated" if closed else "rectified",
                resolved_week=last["resolved_week"],
                first_opened=min(c["first_week"] for c in rows),
                case_ids=tuple(c["id"] for c in chosen),
            )
        )
    return counted, waiting


async def load_cases(conn: Conn, *, week: date, config: CampaignConfig) -> list[dict[str, Any]]:
    problems = sorted(set(config.problems) | set(config.land_problems))
    return [dict(r) for r in await conn.fetch(_CASES, problems, week)]


async def land_firms(
    conn: Conn, *, cases: list[dict[str, Any]], week: date, config: CampaignConfig
) -> list[LandFirm]:
    """Firms whose low-efficiency land counts as rectified as of ``week``."""
    start, week_end = config.plan.count_from, week + timedelta(days=6)
    by_case: dict[int, dict[str, Any]] = {}
    for row in cases:
        if row["problem"] not in config.land_problems:
            continue
        if _resolved_by(row, week) and row["resolved_week"] >= start:
            by_case[row["firm_id"]] = row
    ended = {
        r["firm_id"]: r["until"]
        for r in await conn.fetch(_ENDED, list(config.land_lists), start, week_end)
    }
    ids = sorted(set(by_case) | set(ended))
    firms = {r["id"]: dict(r) for r in await conn.fetch(_FIRMS, ids)}
    out = []
    for firm_id in ids:
        case = by_case.get(firm_id)
        out.append(
            LandFirm(
                firm_id=firm_id,
                town=case["town"] if case is not None else firms[firm_id]["town"],
                land_mu=firms[firm_id]["land_mu"],
                by="case" if case is not None else "list",
                on=case["resolved_week"] if case is not None else ended[firm_id],
            )
        )
    return out

"""The content of a week's notice: a header, a summary per town, and per town its items
(one per case) with the firm's key figures. Pure data (JSON-ready, deterministic for the
same database state), from which every export is rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from alerts import campaign, inputs, monthly_rules
from alerts.energy import Basis, Factors
from alerts.notices.config import NoticeConfig
from alerts.rulebook import Rulebook
from meterhub.db import Conn
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings

STATUS_ZH = {
    "issued": "已通报",
    "acknowledged": "已签收",
    "rectifying": "整改中",
    "resolved": "已销号",
    "escalated": "已升级督办",
}
COLOUR_ZH = {"none": "正常", "blue": "蓝色", "yellow": "黄色", "red": "红色", "green": "绿色"}
TREND_WEEKS = 8

_TOWNS = "SELECT name, full_name, notice_unit FROM towns ORDER BY sort_order"

_CASES = """
SELECT c.id, c.firm_id, c.problem, c.town, c.status, c.first_week, c.episode_week,
       c.deadline, c.reopened, c.resolved_week, c.resolved_basis,
       f.name AS firm, f.credit_code, f.industry, f.above_scale, f.land_mu::float8 AS land_mu
FROM notice_cases c JOIN firms f ON f.id = c.firm_id
WHERE c.first_week <= $1 AND (c.status <> 'resolved' OR c.resolved_week >= $1)
ORDER BY c.town, c.id
"""

_CLOSED_TOTAL = """
SELECT town, count(*) AS n FROM notice_cases
WHERE status = 'resolved' AND resolved_week <= $1 GROUP BY town
"""

_CLASSES = """
SELECT DISTINCT ON (firm_id, year) firm_id, year, class FROM evaluations
WHERE firm_id = ANY($1::bigint[]) AND class IS NOT NULL
ORDER BY firm_id, year, (source = 'official') DESC
"""

_CARBON = """
SELECT DISTINCT ON (firm_id) firm_id, year, grade, level FROM carbon_grades
WHERE firm_id = ANY($1::bigint[]) ORDER BY firm_id, year DESC
"""

_WEEKLY_KWH = """
SELECT firm_id, day - ((extract(isodow FROM day)::int - 1)) AS week, sum(energy) AS kwh
FROM firm_day_features
WHERE firm_id = ANY($1::bigint[]) AND ((day >= $2 AND day < $3) OR (day >= $4 AND day < $5))
GROUP BY 1, 2
"""

_HITS = """
SELECT firm_id, rule, evidence FROM rule_hits
WHERE week = $1 AND firm_id = ANY($2::bigint[]) ORDER BY firm_id, rule
"""

_FEEDBACK = """
SELECT DISTINCT ON (case_id) case_id, at, note FROM case_events
WHERE case_id = ANY($1::bigint[]) AND action = 'feedback'
ORDER BY case_id, id DESC
"""

_COMPLETENESS = """
SELECT coalesce(sum(intervals), 0)::float8 FROM firm_day_features WHERE day >= $1 AND day < $2
"""


@dataclass(frozen=True, slots=True)
class Context:
    """What item rows need beside the cases, keyed by firm or case."""

    classes: dict[int, list[tuple[int, str]]]
    carbon: dict[int, dict[str, Any]]
    weekly: dict[tuple[int, date], float]
    hits: dict[int, list[tuple[str, dict[str, Any]]]]
    feedback: dict[int, dict[str, Any]]
    intensity: dict[int, tuple[float, float | None]]  # firm -> (own, industry median)


def year_earlier_week(week: date) -> date | None:
    year, number, _ = week.isocalendar()
    try:
        return date.fromisocalendar(year - 1, number, 1)
    except ValueError:
        return None


def colour(*, status: str, deadline: date, week: date, config: NoticeConfig) -> str:
    """green once resolved; red past the deadline; yellow / blue as it nears; else none."""
    if status == "resolved":
        return "green"
    left = (deadline - (week + timedelta(days=6))).days
    if left < 0:
        return "red"
    if left <= config.yellow_days:
        return "yellow"
    if left <= config.blue_days:
        return "blue"
    return "none"


def _years_in_d(history: list[tuple[int, str]]) -> int:
    """Consecutive latest years in class D."""
    run, previous = 0, None
    for year, klass in sorted(history, reverse=True):
        if klass != "D" or (previous is not None and previous - year != 1):
            break
        run, previous = run + 1, year
    return run


async def _intensities(
    conn: Conn, week: date, rulebook: Rulebook
) -> dict[int, tuple[float, float | None]]:
    window = inputs.Window(week)
    rule = rulebook["intensity_peers"]
    monthly = await inputs.load_monthly(conn, window.first_month, window.end)
    output = await inputs.load_output(conn, window.first_month, window.end)
    threshold = float(rulebook["data_incomplete"].param("min_completeness"))
    months = monthly_rules.prepare(
        monthly, output, month=monthly_rules.judged_month(week), min_completeness=threshold
    )
    own = monthly_rules.intensities(months, rule=rule)
    firms = await conn.fetch("SELECT id, industry FROM firms")
    depth = int(rule.param("industry_depth"))
    sectors = pl.DataFrame(
        {"firm_id": [r["id"] for r in firms], "sector": [r["industry"][:depth] for r in firms]},
        schema={"firm_id": pl.Int64, "sector": pl.String},
    )
    frame = own.join(sectors, on="firm_id").with_columns(
        median=pl.col("intensity").median().over("sector")
    )
    return {
        int(f): (float(i), float(m) if m is not None else None)
        for f, i, m in frame.select("firm_id", "intensity", "median").iter_rows()
    }


async def _context(
    conn: Conn, *, week: date, firm_ids: list[int], case_ids: list[int], rulebook: Rulebook
) -> Context:
    classes: dict[int, list[tuple[int, str]]] = {}
    for r in await conn.fetch(_CLASSES, firm_ids):
        classes.setdefault(r["firm_id"], []).append((r["year"], r["class"]))
    last_year = year_earlier_week(week) or week
    weekly = {
        (r["firm_id"], r["week"]): float(r["kwh"])
        for r in await conn.fetch(
            _WEEKLY_KWH,
            firm_ids,
            week - timedelta(weeks=TREND_WEEKS - 1),
            week + timedelta(days=7),
            last_year,
            last_year + timedelta(days=7),
        )
    }
    hits: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for r in await conn.fetch(_HITS, week, firm_ids):
        hits.setdefault(r["firm_id"], []).append((r["rule"], json.loads(r["evidence"])))
    return Context(
        classes=classes,
        carbon={r["firm_id"]: dict(r) for r in await conn.fetch(_CARBON, firm_ids)},
        weekly=weekly,
        hits=hits,
        feedback={r["case_id"]: dict(r) for r in await conn.fetch(_FEEDBACK, case_ids)},
        intensity=await _intensities(conn, week, rulebook),
    )


def _ratio(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return round(now / before - 1, 4)


def _figures(case: dict[str, Any], ctx: Context, week: date, factors: Factors) -> dict[str, Any]:
    firm = case["firm_id"]
    kwh = ctx.weekly.get((firm, week))
    previous = ctx.weekly.get((firm, week - timedelta(weeks=1)))
    last_year = year_earlier_week(week)
    year_ago = ctx.weekly.get((firm, last_year)) if last_year else None
    own, median = ctx.intensity.get(firm, (None, None))
    excess = next((e for r, e in ctx.hits.get(firm, []) if r == "baseline_excess"), None)
    return {
        "week_kwh": round(kwh, 1) if kwh is not None else None,
        "week_on_week": _ratio(kwh, previous),
        "year_on_year": _ratio(kwh, year_ago),
        "kwh_per_10k_output": round(own, 2) if own is not None else None,
        "industry_median": round(median, 2) if median is not None else None,
        "baseline_deviation": (
            round(excess["excess_kwh"] / excess["predicted"], 4)
            if excess and excess.get("predicted")
            else None
        ),
        "week_tce": round(kwh * factors.electricity / 1000, 3) if kwh is not None else None,
        "trend_kwh": [
            ctx.weekly.get((firm, week - timedelta(weeks=TREND_WEEKS - 1 - i)))
            for i in range(TREND_WEEKS)
        ],
    }


def _item(
    case: dict[str, Any],
    ctx: Context,
    *,
    week: date,
    units: dict[str, str],
    config: NoticeConfig,
    rulebook: Rulebook,
    factors: Factors,
) -> dict[str, Any]:
    problem = config.problems[case["problem"]]
    history = ctx.classes.get(case["firm_id"], [])
    latest_class = max(history)[1] if history else None
    carbon = ctx.carbon.get(case["firm_id"])
    reasons = [
        {"rule": rule, "text": rulebook[rule].text(evidence), "evidence": evidence}
        for rule, evidence in ctx.hits.get(case["firm_id"], [])
        if config.problem_of_rule(rule) == problem.code
        or (
            rule == "monitored_list"
            and any(config.problem_of_list(c) == problem.code for c in evidence.get("codes", []))
        )
    ]
    feedback = ctx.feedback.get(case["id"])
    status_colour = colour(
        status=case["status"], deadline=case["deadline"], week=week, config=config
    )
    return {
        "case_id": case["id"],
        "firm_id": case["firm_id"],
        "firm": case["firm"],
        "credit_code": case["credit_code"],
        "town": case["town"],
        "industry": case["industry"],
        "above_scale": case["above_scale"],
        "land_mu": case["land_mu"],
        "evaluation_class": latest_class,
        "years_in_d": _years_in_d(history),
        "carbon_grade": carbon["grade"] if carbon else None,
        "problem": problem.code,
        "problem_zh": problem.zh,
        "reasons": reasons,
        "figures": _figures(case, ctx, week, factors),
        "action": problem.action,
        "deadline": case["deadline"].isoformat(),
        "responsible_unit": units.get(case["town"], case["town"]),
        "status": case["status"],
        "status_zh": STATUS_ZH[case["status"]],
        "colour": status_colour,
        "colour_zh": COLOUR_ZH[status_colour],
        "first_notice": case["first_week"].isoformat(),
        "weeks_running": (week - case["episode_week"]).days // 7 + 1,
        "reopened": case["reopened"],
        "latest_feedback": (
            {"at": feedback["at"].isoformat(), "note": feedback["note"]} if feedback else None
        ),
    }


def _summary(items: list[dict[str, Any]], closed_total: int) -> dict[str, Any]:
    live = [i for i in items if i["status"] != "resolved"]
    closed = len(items) - len(live)
    judged = closed_total + len(live)
    return {
        "new": sum(1 for i in live if i["weeks_running"] == 1),
        "continuing": sum(1 for i in live if i["weeks_running"] > 1),
        "overdue": sum(1 for i in live if i["colour"] == "red"),
        "closed_this_week": closed,
        "closed_total": closed_total,
        "completion_rate": round(closed_total / judged, 4) if judged else None,
    }


async def build(
    conn: Conn, *, week: date, config: NoticeConfig, rulebook: Rulebook, settings: Settings
) -> dict[str, Any]:
    """The notice of ``week`` from the cases as they stand."""
    towns = await conn.fetch(_TOWNS)
    units = {t["name"]: t["notice_unit"] for t in towns}
    cases = [dict(r) for r in await conn.fetch(_CASES, week)]
    ctx = await _context(
        conn,
        week=week,
        firm_ids=sorted({c["firm_id"] for c in cases}),
        case_ids=[c["id"] for c in cases],
        rulebook=rulebook,
    )
    factors = Factors.of(settings, Basis.CALORIFIC)
    items = [
        _item(c, ctx, week=week, units=units, config=config, rulebook=rulebook, factors=factors)
        for c in cases
    ]
    order = {"red": 0, "yellow": 1, "blue": 2, "none": 3, "green": 4}
    items.sort(key=lambda i: (order[i["colour"]], i["problem"], i["firm_id"], i["case_id"]))
    closed = {r["town"]: r["n"] for r in await conn.fetch(_CLOSED_TOTAL, week)}
    by_town = []
    for town in towns:
        own = [i for i in items if i["town"] == town["name"]]
        by_town.append(
            {
                "town": town["name"],
                "full_name": town["full_name"],
                "notice_unit": town["notice_unit"],
                "summary": _summary(own, closed.get(town["name"], 0)),
                "items": own,
            }
        )
    end = week + timedelta(days=7)
    present = await conn.fetchval(_COMPLETENESS, week, end)
    meters = await conn.fetch(
        "SELECT firm_id, extract(epoch FROM installed_at)::float8 AS installed, "
        "extract(epoch FROM removed_at)::float8 AS removed FROM meters "
        "WHERE utility = 'electricity'"
    )
    expected = inputs.expected_quarters(
        pl.DataFrame([dict(m) for m in meters], schema=inputs.METERS, orient="row"), week, 7
    )["expected"].sum()
    year, number, _ = week.isocalendar()
    return {
        "header": {
            "number": config.number_of(week),
            "title": config.title,
            "issuing_unit": config.issuing_unit,
            "iso_week": f"{year}-W{number:02d}",
            "period": {"start": week.isoformat(), "end": (end - timedelta(days=1)).isoformat()},
            "data_cutoff": datetime.combine(end, time(), LOCAL_TZ).isoformat(),
            "completeness": round(present / expected, 4) if expected else None,
        },
        "summary": _summary(items, sum(closed.values())),
        "towns": by_town,
        "campaign": await _campaign(conn, week=week, settings=settings),
    }


async def _campaign(conn: Conn, *, week: date, settings: Settings) -> list[dict[str, Any]]:
    """The city's progress against the plan's targets, one line per target."""
    progress = await campaign.progress(conn, week=week, settings=settings)
    city = progress["city"] or {}
    return [
        {
            "code": target["code"],
            "zh": target["zh"],
            "target": target["target"],
            "unit": target["unit"],
            "measured": city.get(target["code"], {}).get("measured"),
            "share_of_target": city.get(target["code"], {}).get("share_of_target"),
        }
        for target in progress["targets"]
    ]

"""A firm's analytic profile: its energy accounting, intensity against its industry, its
baseline fit, evaluation class history, carbon grade, open findings and data-quality
events — what a bureau analyst or a town officer opens when a firm is on a list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from alerts import accounting, monthly_rules
from alerts.listing import Filters, list_findings
from alerts.rulebook import Rulebook
from meterhub.db import Conn
from meterhub.settings import Settings

# Paired months (kWh with completeness, output) of the firm's sector peers, for intensity
# and the baseline; the sector is the firm's industry code to ``depth`` characters.
_MONTHS = """
SELECT f.firm_id, f.month, f.kwh, f.intervals, f.expected, o.output_value::float8
FROM firm_month_features f
JOIN firms ON firms.id = f.firm_id AND left(firms.industry, $4) = left($3, $4)
LEFT JOIN output_figures o ON o.firm_id = f.firm_id AND o.month = f.month
WHERE f.month >= $1 AND f.month < $2
"""
_MONTH_SCHEMA = {
    "firm_id": pl.Int64,
    "month": pl.Date,
    "kwh": pl.Float64,
    "intervals": pl.Int64,
    "expected": pl.Int64,
    "output_value": pl.Float64,
}
_CLASSES = """
SELECT year, source, scheme_id, cohort, score, class, rank, cohort_size FROM evaluations
WHERE firm_id = $1 ORDER BY year DESC, source
"""
_CARBON = """
SELECT year, sector, co2_t, value_added_10k, l, sector_l, k, grade, level, factor
FROM carbon_grades WHERE firm_id = $1 ORDER BY year DESC LIMIT 1
"""
_EVENTS = """
SELECT 'meter_' || kind AS kind, count(*) AS n FROM interval_events e
JOIN meters m ON m.id = e.meter_id
WHERE m.firm_id = $1 AND e.start >= $2 GROUP BY 1
UNION ALL
SELECT 'terminal_' || kind, count(*) FROM terminal_events t JOIN meters m ON m.id = t.meter_id
WHERE m.firm_id = $1 AND t.at >= $2 GROUP BY 1
"""


def last_whole_week(today: date) -> date:
    return today - timedelta(days=today.weekday() + 7)


async def _intensity_and_baseline(
    conn: Conn, *, firm: dict[str, Any], week: date, rulebook: Rulebook
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    peers_rule, baseline_rule = rulebook["intensity_peers"], rulebook["baseline_excess"]
    month = monthly_rules.judged_month(week)
    first = date(month.year - 2, month.month, 1)
    depth = int(peers_rule.param("industry_depth"))
    rows = await conn.fetch(_MONTHS, first, week + timedelta(days=7), firm["industry"], depth)
    frame = pl.DataFrame([dict(r) for r in rows], schema=_MONTH_SCHEMA, orient="row")
    threshold = float(rulebook["data_incomplete"].param("min_completeness"))
    months = monthly_rules.mark(frame, month=month, min_completeness=threshold)
    intensities = monthly_rules.intensities(months, rule=peers_rule)
    own = intensities.filter(pl.col("firm_id") == firm["id"])
    intensity = None
    if own.height:
        peer_median = intensities["intensity"].median()
        row = own.row(0, named=True)
        intensity = {
            "sector": firm["industry"][:depth],
            "months": row["n"],
            "kwh_per_10k_output": round(row["intensity"], 3),
            "peer_median": round(peer_median, 3) if isinstance(peer_median, float) else None,
            "peers": intensities.height,
            "year_on_year": (
                round(row["intensity_yoy"], 4) if row["intensity_yoy"] is not None else None
            ),
        }
    fits = monthly_rules.fit_baselines(
        months.filter(pl.col("firm_id") == firm["id"]), rule=baseline_rule
    )
    baseline = None
    if fits.height:
        fit = fits.row(0, named=True)
        baseline = {
            "months": fit["n"],
            "intercept_kwh": round(fit["a"], 3),
            "kwh_per_10k_output": round(fit["b"] * 10_000, 6),
            "r2": round(fit["r2"], 4),
            "cv_rmse": round(fit["cv_rmse"], 4),
            "nmbe": round(fit["nmbe"], 6),
            "p_value": round(fit["p"], 6),
            "valid": fit["valid"],
        }
    return intensity, baseline


async def profile(
    conn: Conn,
    *,
    firm: dict[str, Any],
    week: date,
    settings: Settings,
    rulebook: Rulebook,
) -> dict[str, Any]:
    """The profile of ``firm`` (a registry row as a dict) for the week starting ``week``."""
    intensity, baseline = await _intensity_and_baseline(
        conn, firm=firm, week=week, rulebook=rulebook
    )
    _, findings = await list_findings(
        conn,
        filters=Filters(firm_id=firm["id"], status="open"),
        rulebook=rulebook,
        limit=100,
        offset=0,
    )
    carbon = await conn.fetchrow(_CARBON, firm["id"])
    events = await conn.fetch(_EVENTS, firm["id"], week - timedelta(days=90))
    return {
        "firm": firm,
        "week": week,
        "energy": await accounting.account(
            conn,
            firm_id=firm["id"],
            land_mu=float(firm["land_mu"]) if firm.get("land_mu") is not None else None,
            week=week,
            settings=settings,
        ),
        "intensity": intensity,
        "baseline": baseline,
        "evaluations": [dict(r) for r in await conn.fetch(_CLASSES, firm["id"])],
        "carbon_grade": dict(carbon) if carbon is not None else None,
        "open_findings": findings,
        "data_quality_90_days": {r["kind"]: r["n"] for r in events},
    }

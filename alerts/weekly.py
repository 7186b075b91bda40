"""One week's analytics: read the inputs, evaluate every enabled rule, store the hits and
bring the findings up to date, in one transaction.

Deterministic and idempotent: the same data gives the same hits and findings, and
re-running a week replaces that week's hits (see `alerts.findings`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import asyncpg
import polars as pl

from alerts import inputs as source
from alerts import list_rules, load_rules, monthly_rules, quality_rules
from alerts.daytypes import day_types
from alerts.energy import Basis, Factors
from alerts.errors import InvalidPeriodError
from alerts.findings import Hit, store
from alerts.rulebook import Rulebook
from meterhub.settings import Settings


@dataclass(slots=True)
class RunSummary:
    week: date
    firms: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def monday(week: date) -> date:
    if week.isoweekday() != 1:
        raise InvalidPeriodError(f"{week} is not a Monday (weeks start on Monday)")
    return week


def evaluate(
    data: source.Inputs, *, week: date, rulebook: Rulebook, factors: Factors
) -> dict[str, pl.DataFrame]:
    """Every enabled rule's hits: rule code -> frame of ``firm_id`` and evidence columns."""
    window = source.Window(week)
    min_completeness = float(rulebook["data_incomplete"].param("min_completeness"))
    types = day_types(window.first_day, window.end, data.holidays)
    days = load_rules.prepare(data.features, types, week=week, min_completeness=min_completeness)
    month = monthly_rules.judged_month(week)
    months = monthly_rules.prepare(
        data.monthly, data.output, month=month, min_completeness=min_completeness
    )
    fits = monthly_rules.fit_baselines(months, rule=rulebook["baseline_excess"])
    intensity = monthly_rules.intensities(months, rule=rulebook["intensity_peers"])
    rules: dict[str, Callable[[], pl.DataFrame]] = {
        "data_incomplete": lambda: quality_rules.incomplete_days(
            data.features, data.expected, week=week, rule=rulebook["data_incomplete"]
        ),
        "terminal_offline": lambda: quality_rules.offline(
            data.offline, rule=rulebook["terminal_offline"]
        ),
        "meter_events": lambda: quality_rules.meter_events(data.events),
        "suspected_stoppage": lambda: load_rules.stoppage(
            days, data.hourly, types, week=week, rule=rulebook["suspected_stoppage"]
        ),
        "suspected_cutback": lambda: load_rules.cutback(days, rule=rulebook["suspected_cutback"]),
        "energy_surge": lambda: load_rules.surge(days, rule=rulebook["energy_surge"]),
        "idle_load": lambda: load_rules.idle_load(days, rule=rulebook["idle_load"]),
        "baseline_excess": lambda: monthly_rules.baseline_excess(
            months, fits, month=month, rule=rulebook["baseline_excess"], factors=factors
        ),
        "baseline_drift": lambda: monthly_rules.baseline_drift(
            months, fits, rule=rulebook["baseline_drift"]
        ),
        "intensity_peers": lambda: monthly_rules.intensity_peers(
            intensity, data.firms, rule=rulebook["intensity_peers"]
        ),
        "intensity_rising": lambda: monthly_rules.intensity_rising(
            intensity, rule=rulebook["intensity_rising"]
        ),
        "above_city_path": lambda: monthly_rules.above_city_path(
            intensity, rule=rulebook["above_city_path"]
        ),
        "two_high": lambda: monthly_rules.two_high(
            months, data.projects, rule=rulebook["two_high"], factors=factors
        ),
        "monitored_list": lambda: list_rules.monitored(data.lists),
        "d_class_two_years": lambda: list_rules.d_two_years(data.classes, week=week),
    }
    found = {code: run() for code, run in rules.items() if rulebook.enabled(code)}
    known = data.firms.select("firm_id")
    found = {code: frame.join(known, on="firm_id", how="semi") for code, frame in found.items()}
    return _suppress(found)


#: A hit of the first rule explains the others for that firm and week: a suspected
#: stoppage explains a cutback and a rising idle share, a cutback the idle share (its
#: days are mostly base load); a month far above the baseline
#: explains the CUSUM jump it causes.
_EXPLAINS = {
    "suspected_stoppage": ("suspected_cutback", "idle_load"),
    "suspected_cutback": ("idle_load",),
    "baseline_excess": ("baseline_drift",),
}


def _suppress(found: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    for cause, effects in _EXPLAINS.items():
        hits = found.get(cause)
        if hits is None or hits.is_empty():
            continue
        for code in effects:
            if code in found:
                found[code] = found[code].join(hits.select("firm_id"), on="firm_id", how="anti")
    return found


def to_hits(
    found: dict[str, pl.DataFrame], firms: pl.DataFrame, *, rulebook: Rulebook
) -> list[Hit]:
    """Frames of evidence as hit rows, firm attribution from ``firms``."""
    where = dict(
        zip(
            firms["firm_id"].to_list(),
            zip(firms["town"].to_list(), firms["industry"].to_list(), strict=True),
            strict=True,
        )
    )
    hits = []
    for code, frame in found.items():
        if frame.is_empty():
            continue
        evidence = frame.drop("firm_id").write_ndjson().splitlines()
        for firm_id, text in zip(frame["firm_id"].to_list(), evidence, strict=True):
            town, industry = where[firm_id]
            hits.append(Hit(firm_id, code, rulebook[code].severity, town, industry, text))
    hits.sort(key=lambda h: (h.firm_id, h.rule))
    return hits


async def run_week(
    pool: asyncpg.Pool, *, week: date, settings: Settings, rulebook: Rulebook
) -> RunSummary:
    """Evaluate and store one ISO week (``week`` is its Monday)."""
    week = monday(week)
    summary = RunSummary(week)
    started = datetime.now().astimezone()
    factors = Factors.of(settings, Basis.CALORIFIC)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        t0 = time.perf_counter()
        night = list(rulebook["idle_load"].param("night_hours"))
        data = await source.load(conn, source.Window(week), night_hours=night)
        t1 = time.perf_counter()
        found = evaluate(data, week=week, rulebook=rulebook, factors=factors)
        hits = to_hits(found, data.firms, rulebook=rulebook)
        t2 = time.perf_counter()
        await store(conn, week=week, hits=hits, rulebook=rulebook)
        summary.firms = data.firms.height
        summary.hits = {code: frame.height for code, frame in found.items()}
        await conn.execute(
            "INSERT INTO analytics_runs (week, started_at, finished_at, firms, hits, summary) "
            "VALUES ($1, $2, now(), $3, $4, $5) ON CONFLICT (week) DO UPDATE SET "
            "started_at = excluded.started_at, finished_at = excluded.finished_at, "
            "firms = excluded.firms, hits = excluded.hits, summary = excluded.summary",
            week,
            started,
            summary.firms,
            summary.total,
            json.dumps(summary.hits),
        )
        t3 = time.perf_counter()
    summary.seconds = {"read_sql": t1 - t0, "rules_polars": t2 - t1, "store_sql": t3 - t2}
    return summary

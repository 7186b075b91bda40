"""The year's (or year to date's) per-mu evaluation and carbon grades: read, compute,
store. Re-running a year replaces its computed evaluations and its carbon grades whole
(official classes stay), so a re-run is idempotent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import polars as pl

from alerts import carbon
from alerts.annual import Period, load_year
from alerts.energy import Basis, Factors
from alerts.errors import UnknownSchemeError
from alerts.evaluation import (
    EMISSIONS,
    INDICATORS,
    Classing,
    Item,
    Method,
    Scheme,
    evaluate,
)
from meterhub.db import Conn
from meterhub.settings import Settings

Step = Callable[[str], None]
#: The stages `run_year` reports to its ``step`` callback, in order.
STEPS = ("reading", "scoring", "grading", "storing")

_SCHEME = """
SELECT id, name, year, method, classing, cuts FROM evaluation_schemes
WHERE ($1::text IS NOT NULL AND id = $1) OR ($1::text IS NULL AND year <= $2)
ORDER BY year DESC, id LIMIT 1
"""
_ITEMS = """
SELECT cohort, indicator, weight, benchmark, unit, cap FROM evaluation_indicators
WHERE scheme_id = $1 ORDER BY cohort, indicator
"""


async def load_scheme(conn: Conn, *, year: int, scheme_id: str | None = None) -> Scheme:
    """``scheme_id``, or the newest scheme of a year not after ``year``."""
    row = await conn.fetchrow(_SCHEME, scheme_id, year)
    if row is None:
        wanted = f"scheme {scheme_id!r}" if scheme_id else f"a scheme for {year} or before"
        raise UnknownSchemeError(f"no evaluation {wanted}")
    items = tuple(Item(**dict(r)) for r in await conn.fetch(_ITEMS, row["id"]))
    return Scheme(
        id=row["id"],
        name=row["name"],
        year=row["year"],
        method=Method(row["method"]),
        classing=Classing(row["classing"]),
        cuts=orjson.loads(row["cuts"]),
        items=items,
    )


@dataclass
class YearSummary:
    period: Period
    scheme: str
    firms: int
    classes: dict[str, dict[str, int]]  # cohort -> class -> firms
    not_rated: dict[str, int]  # reason -> firms
    grades: dict[int, int]  # carbon grade -> firms
    factor: carbon.GridFactor
    seconds: dict[str, float] = field(default_factory=dict)


def _indicators(row: dict[str, Any], scheme: Scheme) -> str:
    items = {}
    for item in scheme.of(row["cohort"]):
        value = row[item.indicator]
        if value is not None:
            basis = "value"
        else:
            basis = "cohort_average" if item.indicator == EMISSIONS else "missing"
        items[item.indicator] = {
            "value": value,
            "unit": item.unit,
            "benchmark": item.benchmark,
            "weight": item.weight,
            "cap": item.cap,
            "score": row[f"score_{item.indicator}"],
            "basis": basis,
        }
    values = {name: row[name] for name in INDICATORS}
    body = {"months": row["months"], "values": values, "items": items, "reason": row["reason"]}
    return orjson.dumps(body).decode()


def _evaluation_records(
    frame: pl.DataFrame, *, scheme: Scheme, period: Period
) -> list[tuple[Any, ...]]:
    return [
        (
            row["firm_id"],
            period.year,
            "computed",
            scheme.id,
            row["cohort"],
            row["score"],
            row["class"],
            row["rank"],
            row["cohort_size"],
            _indicators(row, scheme),
            period.through_month,
        )
        for row in frame.iter_rows(named=True)
    ]


_EVALUATION_COLUMNS = [
    "firm_id",
    "year",
    "source",
    "scheme_id",
    "cohort",
    "score",
    "class",
    "rank",
    "cohort_size",
    "indicators",
    "through_month",
]
_GRADE_COLUMNS = [
    "firm_id",
    "sector",
    "co2_t",
    "value_added_10k",
    "l",
    "sector_l",
    "k",
    "grade",
    "level",
    "months",
]


async def _store(
    conn: Conn,
    *,
    period: Period,
    evaluations: list[tuple[Any, ...]],
    grades: pl.DataFrame,
    factor: carbon.GridFactor,
    gas: float,
) -> None:
    await conn.execute(
        "DELETE FROM evaluations WHERE year = $1 AND source = 'computed'", period.year
    )
    await conn.copy_records_to_table(
        "evaluations", records=evaluations, columns=_EVALUATION_COLUMNS
    )
    await conn.execute("DELETE FROM carbon_grades WHERE year = $1", period.year)
    extra = (period.year, factor.tco2_per_mwh, factor.year, factor.region, factor.kind, gas)
    records = [(*row, period.through_month, *extra) for row in grades.iter_rows()]
    columns = [*_GRADE_COLUMNS, "through_month", "year", "factor", "factor_year"]
    columns += ["factor_region", "factor_kind", "gas_kg_co2_per_m3"]
    await conn.copy_records_to_table("carbon_grades", records=records, columns=columns)


def _counts(frame: pl.DataFrame) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    classes: dict[str, dict[str, int]] = {}
    rated = frame.filter(pl.col("class").is_not_null())
    for cohort, cls, n in rated.group_by("cohort", "class").len().sort("cohort", "class").rows():
        classes.setdefault(cohort, {})[cls] = n
    reasons = frame.filter(pl.col("reason").is_not_null()).group_by("reason").len().sort("reason")
    return classes, dict(reasons.rows())


async def run_year(
    pool: asyncpg.Pool,
    *,
    period: Period,
    settings: Settings,
    scheme_id: str | None = None,
    step: Step | None = None,
) -> YearSummary:
    """Evaluate every registered firm for ``period`` and grade its carbon efficiency, in
    one transaction (`UnknownSchemeError`, `carbon.NoGridFactorError` before any write)."""
    say = step or (lambda _: None)
    seconds: dict[str, float] = {}
    exempt = [p.strip() for p in settings.evaluation_not_rated_industries.split(",") if p.strip()]
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        started = time.perf_counter()
        say("reading")
        scheme = await load_scheme(conn, year=period.year, scheme_id=scheme_id)
        factor = await carbon.grid_factor(
            conn,
            region=settings.grid_factor_region,
            kind=settings.grid_factor_kind,
            year=period.year,
        )
        year = await load_year(conn, period)
        seconds["sql_read"] = time.perf_counter() - started
        started = time.perf_counter()
        say("scoring")
        factors = Factors.of(settings, Basis.EQUAL_VALUE)
        evaluated = evaluate(year, scheme=scheme, factors=factors, exempt=exempt)
        say("grading")
        grades = carbon.grade(
            year,
            factor=factor,
            kg_co2_per_m3_gas=settings.kg_co2_per_m3_gas,
            depth=settings.carbon_sector_depth,
            sector_mean=settings.carbon_sector_mean,
        )
        records = _evaluation_records(evaluated, scheme=scheme, period=period)
        seconds["polars"] = time.perf_counter() - started
        started = time.perf_counter()
        say("storing")
        await _store(
            conn,
            period=period,
            evaluations=records,
            grades=grades,
            factor=factor,
            gas=settings.kg_co2_per_m3_gas,
        )
        seconds["sql_write"] = time.perf_counter() - started
    classes, reasons = _counts(evaluated)
    grade_counts = dict(grades.group_by("grade").len().sort("grade").rows())
    return YearSummary(
        period=period,
        scheme=scheme.id,
        firms=evaluated.height,
        classes=classes,
        not_rated=reasons,
        grades=grade_counts,
        factor=factor,
        seconds=seconds,
    )

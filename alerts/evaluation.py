"""Per-mu efficiency evaluation (亩均效益综合评价), the pure core: indicators, cohorts,
scores and classes from one frame per firm (`alerts.annual.YEAR`).

Indicators (amounts in the figures are yuan; 10k yuan = 万元):

* ``tax_per_mu``, ``va_per_mu``: tax paid, value added (10k yuan) per mu of land;
* ``va_per_tce``: value added per t of standard coal, electricity at the equal-value
  coefficient (等价值), gas and water by their factors;
* ``va_per_t_emissions``: value added per t of reported pollutant emissions;
* ``va_per_employee``: value added per person, employees the mean of the months reported;
* ``rnd_share``: R&D spend / main revenue; ``tax_per_kwh``: yuan of tax per metered kWh.

Every sum covers the months the firm reported figures for (energy over the same months).
Flows per mu and per employee are annualised (× 12 / months reported), so a year to date
or a missed report is not mistaken for a smaller firm; the other indicators are ratios of
quantities over the same months and need no scaling.

Scores (method ``ratio``): Σ min(value / benchmark, cap) × weight; (``minmax``):
(value − min) / (max − min) × weight within the cohort (every firm the full weight when
all are equal). An item never scores below 0 (negative value added). A firm without
emission data (none reported, or 0 t) gets the cohort's average score for that item;
any other missing indicator (no metered energy, no employees, no main revenue) scores 0.

Classes (``percentile``): firms ranked by score within the cohort (ties share the best
rank: 1, 2, 2, 4); a firm of rank r in n is in the first class whose cut (cumulative share
from the top) is at least r / n: with cuts 0.2 / 0.6 / 0.95, 20 distinct scores give
exactly 4 A, 8 B, 7 C, 1 D; firms tied across a cut all get the better class.
(``bands``): the first class whose cut (lowest score of the class) the score reaches.
D is the rest.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from alerts.energy import Factors
from alerts.errors import AlertsError

NOT_RATED = "not_rated"
COHORTS = ("above_scale", "below_scale_3mu", "below_scale_small")
INDICATORS = (
    "tax_per_mu",
    "va_per_mu",
    "va_per_tce",
    "va_per_t_emissions",
    "va_per_employee",
    "rnd_share",
    "tax_per_kwh",
)
EMISSIONS = "va_per_t_emissions"  # missing: the cohort's average item score
CLASSES = ("A", "B", "C")  # D: the rest
SMALL_MU = 3.0  # below-scale firms on at least this much land form their own cohort
_EPS = 1e-9


class InvalidSchemeError(AlertsError):
    """An evaluation scheme whose cuts or indicators cannot be applied."""

    code = "invalid_scheme"


class Method(enum.StrEnum):
    RATIO = "ratio"
    MINMAX = "minmax"


class Classing(enum.StrEnum):
    PERCENTILE = "percentile"
    BANDS = "bands"


@dataclass(frozen=True, slots=True)
class Item:
    """One indicator of a cohort: its weight, benchmark (in ``unit``) and optional cap on
    value / benchmark."""

    cohort: str
    indicator: str
    weight: float
    benchmark: float
    unit: str
    cap: float | None = None


@dataclass(frozen=True, slots=True)
class Scheme:
    id: str
    name: str
    year: int
    method: Method
    classing: Classing
    cuts: Mapping[str, float]
    items: tuple[Item, ...]

    def __post_init__(self) -> None:
        unknown = set(self.cuts) - set(CLASSES)
        if unknown or not self.cuts:
            raise InvalidSchemeError(f"scheme {self.id}: cuts name classes A, B, C, not {unknown}")
        values = [self.cuts[c] for c in CLASSES if c in self.cuts]
        if self.classing is Classing.PERCENTILE:
            ordered = all(0 < a < b for a, b in itertools.pairwise(values))
            if not ordered or not 0 < values[0] <= values[-1] <= 1:
                raise InvalidSchemeError(f"scheme {self.id}: shares must rise within (0, 1]")
        elif any(a <= b for a, b in itertools.pairwise(values)):
            raise InvalidSchemeError(f"scheme {self.id}: band scores must fall from A to C")

    def of(self, cohort: str) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.cohort == cohort)


def _per(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den`` where ``den`` > 0, else null."""
    return pl.when(den > 0).then(num / den)


def indicators(year: pl.DataFrame, *, factors: Factors) -> pl.DataFrame:
    """``year`` with the seven indicator columns (null where not computable) and ``tce``."""
    scale = 12 / pl.col("months")
    va = pl.col("value_added") / 10_000
    tax = pl.col("tax_paid") / 10_000
    energy = ("kwh", "gas_m3", "water_t")
    tce = pl.when(pl.any_horizontal(pl.col(c).is_not_null() for c in energy)).then(
        (
            pl.col("kwh").fill_null(0) * factors.electricity
            + pl.col("gas_m3").fill_null(0) * factors.gas
            + pl.col("water_t").fill_null(0) * factors.water
        )
        / 1000
    )
    return year.with_columns(tce=tce).with_columns(
        tax_per_mu=_per(tax * scale, pl.col("land_mu")),
        va_per_mu=_per(va * scale, pl.col("land_mu")),
        va_per_tce=_per(va, pl.col("tce")),
        va_per_t_emissions=_per(va, pl.col("emissions_t")),
        va_per_employee=_per(va * scale, pl.col("employees")),
        rnd_share=_per(pl.col("rnd_spend"), pl.col("main_revenue")),
        tax_per_kwh=_per(pl.col("tax_paid"), pl.col("kwh")),
    )


def firm_cohort() -> pl.Expr:
    """A firm's cohort from its registration (``above_scale``, ``land_mu``)."""
    return (
        pl.when(pl.col("land_mu").is_null() | (pl.col("land_mu") <= 0))
        .then(pl.lit(NOT_RATED))
        .when(pl.col("above_scale"))
        .then(pl.lit("above_scale"))
        .when(pl.col("land_mu") >= SMALL_MU)
        .then(pl.lit("below_scale_3mu"))
        .otherwise(pl.lit("below_scale_small"))
    )


def cohorts(frame: pl.DataFrame, *, scheme: Scheme, exempt: Sequence[str]) -> pl.DataFrame:
    """``frame`` with ``cohort`` and, for a firm not rated, the ``reason``: an exempt
    industry (code prefixes, e.g. utilities ``D``), no figures, no land, or a cohort the
    scheme has no indicators for."""
    exempt_industry = pl.lit(False)
    for prefix in exempt:
        exempt_industry = exempt_industry | pl.col("industry").str.starts_with(prefix)
    in_scheme = sorted({i.cohort for i in scheme.items})
    base = firm_cohort()
    reason = (
        pl.when(exempt_industry)
        .then(pl.lit("exempt_industry"))
        .when(pl.col("months").fill_null(0) == 0)
        .then(pl.lit("no_output_figures"))
        .when(base == NOT_RATED)
        .then(pl.lit("no_land"))
        .when(~base.is_in(in_scheme))
        .then(pl.lit("cohort_not_in_scheme"))
    )
    with_reason = frame.with_columns(reason=reason)
    cohort = pl.when(pl.col("reason").is_null()).then(base).otherwise(pl.lit(NOT_RATED))
    return with_reason.with_columns(cohort=cohort)


def _item_score(item: Item, method: Method) -> pl.Expr:
    value = pl.col(item.indicator)
    if method is Method.RATIO:
        ratio = value / item.benchmark
        if item.cap is not None:
            ratio = ratio.clip(upper_bound=item.cap)
    else:
        low, high = value.min(), value.max()
        ratio = pl.when(high > low).then((value - low) / (high - low)).otherwise(1.0)
        ratio = pl.when(value.is_not_null()).then(ratio)
    return (ratio * item.weight).clip(lower_bound=0)


def _score_cohort(frame: pl.DataFrame, items: Sequence[Item], method: Method) -> pl.DataFrame:
    raw = frame.with_columns(_item_score(i, method).alias(f"score_{i.indicator}") for i in items)
    filled = []
    for item in items:
        name = f"score_{item.indicator}"
        fill = pl.col(name).mean().fill_null(0) if item.indicator == EMISSIONS else pl.lit(0.0)
        filled.append(pl.col(name).fill_null(fill))
    imputed = pl.col(EMISSIONS).is_null() & pl.lit(any(i.indicator == EMISSIONS for i in items))
    return raw.with_columns(*filled, imputed=imputed).with_columns(
        score=pl.sum_horizontal(f"score_{i.indicator}" for i in items)
    )


def _class(classing: Classing, cuts: Mapping[str, float]) -> pl.Expr:
    share = pl.col("rank") / pl.col("cohort_size")
    expr: pl.Expr = pl.lit("D")
    for name in reversed([c for c in CLASSES if c in cuts]):
        if classing is Classing.PERCENTILE:
            reached = share <= cuts[name] + _EPS
        else:
            reached = pl.col("score") >= cuts[name] - _EPS
        expr = pl.when(reached).then(pl.lit(name)).otherwise(expr)
    return expr


def classify(scored: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """Rank (ties share the best rank), cohort size and class of each rated firm."""
    ranked = scored.with_columns(
        rank=pl.col("score").rank("min", descending=True).over("cohort").cast(pl.Int64),
        cohort_size=pl.len().over("cohort").cast(pl.Int64),
    )
    return ranked.with_columns(**{"class": _class(scheme.classing, scheme.cuts)})


#: The columns a rated firm has and a not-rated one has as null.
_RATED_COLUMNS: dict[str, type[pl.DataType]] = {
    "score": pl.Float64,
    "rank": pl.Int64,
    "cohort_size": pl.Int64,
    "class": pl.String,
}


def evaluate(
    year: pl.DataFrame, *, scheme: Scheme, factors: Factors, exempt: Sequence[str] = ()
) -> pl.DataFrame:
    """Every firm of ``year`` with its cohort, indicator values, item scores, score, rank,
    cohort size and class (null for firms not rated, whose ``reason`` says why)."""
    frame = cohorts(indicators(year, factors=factors), scheme=scheme, exempt=exempt)
    parts = [frame.filter(pl.col("cohort") == NOT_RATED)]
    for cohort in COHORTS:
        members = frame.filter(pl.col("cohort") == cohort)
        if members.height:
            scored = _score_cohort(members, scheme.of(cohort), scheme.method)
            parts.append(classify(scored, scheme))
    evaluated = pl.concat(parts, how="diagonal_relaxed").sort("firm_id")
    # A year with no rated firm still has the columns it promises (all null).
    missing = {n: t for n, t in _RATED_COLUMNS.items() if n not in evaluated.columns}
    return evaluated.with_columns(pl.lit(None, dtype=t).alias(n) for n, t in missing.items())

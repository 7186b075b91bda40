"""Rules on the daily features of load: suspected stoppage and cutback, surges, idle load.

Each takes the prepared ``days`` frame (see `prepare`) and returns one row per firm hit,
``firm_id`` plus the evidence columns. A firm-day whose completeness is under the data
rule's threshold is never judged (``good`` is false): missing data is not zero load.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from alerts.daytypes import DayType
from alerts.inputs import HOURS
from alerts.rulebook import Rule
from alerts.stats import robust_z

_WORKDAY = pl.col("day_type") == DayType.WORKDAY.value


def prepare(
    features: pl.DataFrame, types: pl.DataFrame, *, week: date, min_completeness: float
) -> pl.DataFrame:
    """Daily features with ``day_type``, ``completeness``, ``good`` and ``week_no`` (0 = the
    judged week, -1 the one before, ...)."""
    return features.join(types, on="day", how="inner").with_columns(
        completeness=pl.col("intervals") / pl.col("expected").clip(lower_bound=1),
        good=(pl.col("intervals") >= pl.col("expected") * min_completeness)
        & (pl.col("expected") > 0),
        week_no=((pl.col("day") - pl.lit(week)).dt.total_days() // 7).cast(pl.Int64),
    )


def _r(expr: pl.Expr, digits: int = 1) -> pl.Expr:
    return expr.round(digits)


def stoppage(
    days: pl.DataFrame, hourly: pl.DataFrame, types: pl.DataFrame, *, week: date, rule: Rule
) -> pl.DataFrame:
    """No producing hour on ``min_days``+ consecutive working days, the run reaching into
    the judged week. Producing: hourly energy above P10 + share x (P95 - P10) of the
    firm's own good days in the ``trailing_days`` before the week."""
    trailing = week - timedelta(days=int(rule.param("trailing_days")))
    hours = hourly.join(days.select("firm_id", "day", "good", "day_type"), on=["firm_id", "day"])
    before = (pl.col("day") >= trailing) & (pl.col("day") < week)
    history = hours.filter(pl.col("good") & before)
    # One long column of (firm, hourly energy): a vertical concat is several times cheaper
    # than exploding a list column.
    values = pl.concat([history.select("firm_id", pl.col(h).alias("hour")) for h in HOURS])
    levels = (
        values.drop_nulls()
        .group_by("firm_id")
        .agg(
            p95=pl.col("hour").quantile(0.95, "linear"),
            p10=pl.col("hour").quantile(0.10, "linear"),
        )
        .filter((pl.col("p95") > 0) & (pl.col("p95") >= pl.col("p10") * rule.param("min_spread")))
        .with_columns(
            threshold=pl.col("p10")
            + rule.param("producing_share") * (pl.col("p95") - pl.col("p10"))
        )
    )
    recent = hours.filter(_WORKDAY & (pl.col("day") >= week - timedelta(days=7)))
    judged = recent.join(levels, on="firm_id").with_columns(
        producing=pl.sum_horizontal(
            [(pl.col(h) > pl.col("threshold")).cast(pl.Int32) for h in HOURS]
        )
    )
    # Working days numbered in calendar order: a run breaks at a working day that is
    # missing, incomplete or producing.
    workdays = types.filter(_WORKDAY).select("day").sort("day").with_row_index("wd")
    runs = (
        judged.filter(pl.col("good") & (pl.col("producing") == 0))
        .join(workdays, on="day")
        .sort("firm_id", "wd")
        .with_columns(
            run=(pl.col("wd").diff().over("firm_id").fill_null(0) != 1).cum_sum().over("firm_id")
        )
        .group_by("firm_id", "run")
        .agg(
            days=pl.len(),
            first_day=pl.col("day").min(),
            last_day=pl.col("day").max(),
            threshold=pl.col("threshold").first(),
            p95=pl.col("p95").first(),
            p10=pl.col("p10").first(),
            max_hour=pl.max_horizontal(HOURS).max(),
        )
        .filter((pl.col("days") >= rule.param("min_days")) & (pl.col("last_day") >= week))
    )
    return (
        runs.sort("days", descending=True)
        .unique("firm_id", keep="first")
        .select(
            "firm_id",
            "days",
            pl.col("first_day").cast(pl.String),
            pl.col("last_day").cast(pl.String),
            threshold_kwh_per_h=_r(pl.col("threshold"), 2),
            p95_kwh_per_h=_r(pl.col("p95"), 2),
            p10_kwh_per_h=_r(pl.col("p10"), 2),
            max_hour_kwh=_r(pl.col("max_hour"), 2),
        )
    )


def _weekly_workday_energy(days: pl.DataFrame, weeks: int) -> pl.DataFrame:
    return (
        days.filter(_WORKDAY & pl.col("good") & (pl.col("week_no") >= -weeks))
        .group_by("firm_id", "week_no")
        .agg(per_day=pl.col("energy").mean(), workdays=pl.len())
        .filter(pl.col("workdays") >= 2)
    )


def cutback(days: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Energy per good working day this week under ``ratio`` x the median of the previous
    ``weeks`` weeks (weeks with fewer than two good working days are left out, so holiday
    weeks are never judged nor used as a baseline)."""
    weeks = int(rule.param("weeks"))
    weekly = _weekly_workday_energy(days, weeks)
    base = (
        weekly.filter(pl.col("week_no") < 0)
        .group_by("firm_id")
        .agg(baseline=pl.col("per_day").median(), baseline_weeks=pl.len())
        .filter(pl.col("baseline_weeks") >= rule.param("min_weeks"))
    )
    return (
        weekly.filter(pl.col("week_no") == 0)
        .join(base, on="firm_id")
        .filter(
            (pl.col("baseline") > 0)
            & (pl.col("per_day") < rule.param("ratio") * pl.col("baseline"))
        )
        .select(
            "firm_id",
            energy_per_workday=_r(pl.col("per_day")),
            baseline_per_workday=_r(pl.col("baseline")),
            ratio_pct=_r(pl.col("per_day") / pl.col("baseline") * 100),
            baseline_weeks=pl.col("baseline_weeks"),
            workdays=pl.col("workdays"),
        )
    )


def surge(days: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """A day this week far above the same day type over the previous ``weeks`` weeks:
    robust z >= ``z`` (or, where the history does not vary, any rise) and at least
    ``min_ratio`` x the median. The day with the largest ratio is the evidence."""
    good = days.filter(pl.col("good"))
    history = (
        good.filter((pl.col("week_no") < 0) & (pl.col("week_no") >= -int(rule.param("weeks"))))
        .group_by("firm_id", "day_type")
        .agg(median=pl.col("energy").median(), energies=pl.col("energy"), n=pl.len())
        .filter(pl.col("n") >= rule.param("min_days"))
        .with_columns(
            mad=(
                pl.col("energies").list.eval((pl.element() - pl.element().median()).abs())
            ).list.median()
        )
    )
    z = robust_z(pl.col("energy"), pl.col("median"), pl.col("mad"))
    hits = (
        good.filter(pl.col("week_no") == 0)
        .join(history, on=["firm_id", "day_type"])
        .with_columns(z=z, ratio=pl.col("energy") / pl.col("median"))
        .filter(
            (pl.col("median") > 0)
            & (pl.col("ratio") >= rule.param("min_ratio"))
            & (pl.col("z").is_null() | (pl.col("z") >= rule.param("z")))
        )
    )
    return (
        hits.sort("ratio", descending=True)
        .unique("firm_id", keep="first")
        .select(
            "firm_id",
            pl.col("day").cast(pl.String),
            "day_type",
            energy=_r(pl.col("energy")),
            median=_r(pl.col("median")),
            z=_r(pl.col("z"), 2),
            ratio=_r(pl.col("ratio"), 2),
        )
    )


def idle_load(days: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """The share of energy used in the night hours on working days, this week's mean over
    good working days, rising ``min_rise`` or more above the median of the firm's previous
    ``weeks`` weekly means (weeks with fewer than two good working days are not judged:
    a holiday's base load is no idle load)."""
    weekly = (
        days.filter(_WORKDAY & pl.col("good") & (pl.col("energy") > 0))
        .filter(pl.col("week_no") >= -int(rule.param("weeks")))
        .with_columns(share=pl.col("night") / pl.col("energy"))
        .group_by("firm_id", "week_no")
        .agg(share=pl.col("share").mean(), workdays=pl.len())
        .filter(pl.col("workdays") >= 2)
    )
    base = (
        weekly.filter(pl.col("week_no") < 0)
        .group_by("firm_id")
        .agg(median=pl.col("share").median(), n=pl.len())
        .filter(pl.col("n") >= rule.param("min_weeks"))
    )
    return (
        weekly.filter(pl.col("week_no") == 0)
        .join(base, on="firm_id")
        .filter(pl.col("share") - pl.col("median") >= rule.param("min_rise"))
        .select(
            "firm_id",
            night_share_pct=_r(pl.col("share") * 100),
            median_share_pct=_r(pl.col("median") * 100),
        )
    )

"""Rules on monthly energy against output: the ISO 50006 baseline and its drift, intensity
against peers, its own history and the city's path, and the two-high threshold.

The judged month is the last whole month before the judged week's month (output figures
arrive monthly, after the month). Energy and output are always taken over the same months,
and a month under the completeness threshold is left out of every ratio and model.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from alerts.energy import Factors
from alerts.rulebook import Rule
from alerts.stats import f_test_p, robust_z


def judged_month(week: date) -> date:
    """The month the monthly rules judge for the week starting ``week``."""
    months = week.year * 12 + week.month - 2
    return date(months // 12, months % 12 + 1, 1)


def prepare(
    monthly: pl.DataFrame, output: pl.DataFrame, *, month: date, min_completeness: float
) -> pl.DataFrame:
    """Monthly energy with output figures, ``good`` and ``month_no`` (0 = the judged month)."""
    joined = monthly.join(output, on=["firm_id", "month"], how="left")
    return mark(joined, month=month, min_completeness=min_completeness)


def mark(frame: pl.DataFrame, *, month: date, min_completeness: float) -> pl.DataFrame:
    """``month_no`` relative to ``month``, and ``good``: the month has energy and its
    completeness is at least ``min_completeness``."""
    index = month.year * 12 + month.month - 1
    return frame.with_columns(
        month_no=pl.col("month").dt.year() * 12 + pl.col("month").dt.month() - 1 - index,
        good=pl.col("kwh").is_not_null()
        & (pl.col("expected") > 0)
        & (pl.col("intervals") >= pl.col("expected") * min_completeness),
    )


def _paired(months: pl.DataFrame) -> pl.DataFrame:
    return months.filter(pl.col("good") & (pl.col("output_value") > 0))


def fit_baselines(months: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Per firm, kWh = a + b x output fitted over the months before the judged one, with
    the ASHRAE Guideline 14 statistics and whether the model is valid."""
    train = _paired(months).filter(
        (pl.col("month_no") < 0) & (pl.col("month_no") >= -int(rule.param("max_months")))
    )
    x, y = pl.col("output_value"), pl.col("kwh")
    dx = x - x.mean().over("firm_id")
    dy = y - y.mean().over("firm_id")
    fits = (
        train.with_columns(dx=dx, dy=dy)
        .group_by("firm_id")
        .agg(
            n=pl.len(),
            x_mean=x.mean(),
            y_mean=y.mean(),
            sxx=(pl.col("dx") ** 2).sum(),
            sxy=(pl.col("dx") * pl.col("dy")).sum(),
            syy=(pl.col("dy") ** 2).sum(),
        )
        .filter((pl.col("n") >= 3) & (pl.col("sxx") > 0) & (pl.col("syy") > 0))
        .with_columns(b=pl.col("sxy") / pl.col("sxx"))
        .with_columns(
            a=pl.col("y_mean") - pl.col("b") * pl.col("x_mean"),
            sse=(pl.col("syy") - pl.col("b") * pl.col("sxy")).clip(lower_bound=0),
        )
        .with_columns(
            r2=1 - pl.col("sse") / pl.col("syy"),
            rmse=(pl.col("sse") / (pl.col("n") - 2)).sqrt(),
        )
        .with_columns(
            cv_rmse=pl.col("rmse") / pl.col("y_mean"),
            f=(pl.col("syy") - pl.col("sse")) / (pl.col("sse") / (pl.col("n") - 2)),
        )
    )
    residuals = train.join(fits.select("firm_id", "a", "b"), on="firm_id").with_columns(
        residual=pl.col("kwh") - pl.col("a") - pl.col("b") * pl.col("output_value")
    )
    nmbe = residuals.group_by("firm_id").agg(residual_sum=pl.col("residual").sum())
    fits = fits.join(nmbe, on="firm_id").with_columns(
        nmbe=pl.col("residual_sum") / ((pl.col("n") - 2) * pl.col("y_mean"))
    )
    p = [
        f_test_p(f, 1, n - 2) for f, n in zip(fits["f"].to_list(), fits["n"].to_list(), strict=True)
    ]
    fits = fits.with_columns(p=pl.Series(p, dtype=pl.Float64))
    return fits.with_columns(
        valid=(pl.col("n") >= rule.param("min_months"))
        & (pl.col("p") < rule.param("max_p"))
        & (pl.col("r2") >= rule.param("min_r2"))
        & (pl.col("cv_rmse") <= rule.param("max_cv_rmse"))
        & (pl.col("nmbe").abs() <= rule.param("max_abs_nmbe"))
    )


def baseline_excess(
    months: pl.DataFrame, fits: pl.DataFrame, *, month: date, rule: Rule, factors: Factors
) -> pl.DataFrame:
    """The judged month above its prediction by max(2 RMSE, ``min_excess_share``)."""
    current = _paired(months).filter(pl.col("month_no") == 0)
    judged = current.join(fits.filter(pl.col("valid")), on="firm_id").with_columns(
        predicted=pl.col("a") + pl.col("b") * pl.col("output_value")
    )
    margin = pl.max_horizontal(
        2 * pl.col("rmse"), rule.param("min_excess_share") * pl.col("predicted")
    )
    excess = pl.col("kwh") - pl.col("predicted")
    return judged.filter(excess > margin).select(
        "firm_id",
        month=pl.lit(month.strftime("%Y-%m")),
        actual=pl.col("kwh").round(1),
        predicted=pl.col("predicted").round(1),
        excess_kwh=excess.round(1),
        excess_tce=(excess * factors.electricity / 1000).round(3),
        r2=pl.col("r2").round(3),
        cv_rmse_pct=(pl.col("cv_rmse") * 100).round(1),
        p_value=pl.col("p").round(4),
        months=pl.col("n"),
    )


def baseline_drift(months: pl.DataFrame, fits: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Tabular CUSUM of standardised residuals, S_t = max(0, S_(t-1) + z_t - k), over the
    model's months and the judged one; a hit when the last S exceeds ``h``. Computed as
    C_t - min(0, min C) with C the cumulative sum of z - k."""
    k, h = float(rule.param("k")), float(rule.param("h"))
    valid = fits.filter(pl.col("valid") & (pl.col("rmse") > 0))
    series = (
        _paired(months)
        .filter(pl.col("month_no") <= 0)
        .join(valid.select("firm_id", "a", "b", "rmse"), on="firm_id")
        .sort("firm_id", "month")
        .with_columns(
            z=(pl.col("kwh") - pl.col("a") - pl.col("b") * pl.col("output_value")) / pl.col("rmse")
        )
        .with_columns(c=(pl.col("z") - k).cum_sum().over("firm_id"))
        .with_columns(s=pl.col("c") - pl.min_horizontal(pl.col("c").cum_min().over("firm_id"), 0))
    )
    last = series.group_by("firm_id").agg(
        cusum=pl.col("s").last(), latest=pl.col("month_no").max(), months=pl.len()
    )
    return last.filter((pl.col("latest") == 0) & (pl.col("cusum") > h)).select(
        "firm_id", cusum=pl.col("cusum").round(2), h=pl.lit(h), months=pl.col("months")
    )


def _window(months: pl.DataFrame, first: int, last: int, min_months: int) -> pl.DataFrame:
    return (
        _paired(months)
        .filter(pl.col("month_no").is_between(first, last))
        .group_by("firm_id")
        .agg(kwh=pl.col("kwh").sum(), output=pl.col("output_value").sum(), n=pl.len())
        .filter(pl.col("n") >= min_months)
        .with_columns(intensity=pl.col("kwh") / (pl.col("output") / 10_000))
    )


def intensities(months: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """kWh per 10k yuan of output over the last ``months`` months and the same months a
    year earlier, with the change of intensity and of monthly output."""
    span, least = int(rule.param("months")), int(rule.param("min_months"))
    now = _window(months, 1 - span, 0, least)
    before = _window(months, 1 - 2 * span, -span, least).select(
        "firm_id",
        intensity_before=pl.col("intensity"),
        output_before=pl.col("output") / pl.col("n"),
    )
    return now.join(before, on="firm_id", how="left").with_columns(
        intensity_yoy=pl.col("intensity") / pl.col("intensity_before") - 1,
        output_yoy=(pl.col("output") / pl.col("n")) / pl.col("output_before") - 1,
    )


def intensity_peers(intensity: pl.DataFrame, firms: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Intensity against the firm's industry (GB/T 4754 to ``industry_depth`` characters),
    among ``min_peers``+ firms: robust z >= ``z`` and at least ``min_ratio`` x the peer
    median (a tight industry must not flag a firm 3 % above it), or more than
    ``peer_ratio`` x the peer median."""
    depth = int(rule.param("industry_depth"))
    frame = intensity.join(
        firms.select("firm_id", sector=pl.col("industry").str.slice(0, depth)), on="firm_id"
    )
    peers = (
        frame.group_by("sector")
        .agg(
            peer_median=pl.col("intensity").median(),
            mad=(pl.col("intensity") - pl.col("intensity").median()).abs().median(),
            peers=pl.len(),
        )
        .filter(pl.col("peers") >= rule.param("min_peers"))
    )
    z = robust_z(pl.col("intensity"), pl.col("peer_median"), pl.col("mad"))
    return (
        frame.join(peers, on="sector")
        .with_columns(z=z, ratio=pl.col("intensity") / pl.col("peer_median"))
        .filter(
            ((pl.col("z") >= rule.param("z")) & (pl.col("ratio") >= rule.param("min_ratio")))
            | (pl.col("ratio") > rule.param("peer_ratio"))
        )
        .select(
            "firm_id",
            "sector",
            intensity=pl.col("intensity").round(2),
            peer_median=pl.col("peer_median").round(2),
            ratio=pl.col("ratio").round(2),
            z=pl.col("z").round(2),
            peers=pl.col("peers"),
            months=pl.col("n"),
        )
    )


def intensity_rising(intensity: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Intensity up ``min_rise`` or more year on year while monthly output did not grow
    more than ``max_output_growth``."""
    return intensity.filter(
        (pl.col("intensity_yoy") >= rule.param("min_rise"))
        & (pl.col("output_yoy") <= rule.param("max_output_growth"))
    ).select(
        "firm_id",
        intensity=pl.col("intensity").round(2),
        intensity_before=pl.col("intensity_before").round(2),
        intensity_yoy_pct=(pl.col("intensity_yoy") * 100).round(1),
        output_yoy_pct=(pl.col("output_yoy") * 100).round(1),
    )


def above_city_path(intensity: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Intensity not falling as fast as the city's yearly path (default -3.4 %)."""
    path = float(rule.param("yearly_change"))
    return intensity.filter(pl.col("intensity_yoy") > path).select(
        "firm_id",
        intensity_yoy_pct=(pl.col("intensity_yoy") * 100).round(1),
        city_path_pct=pl.lit(round(path * 100, 1)),
    )


def two_high(
    months: pl.DataFrame, projects: pl.DataFrame, *, rule: Rule, factors: Factors
) -> pl.DataFrame:
    """Metered energy over the last 12 months, in tce (calorific basis), at or above the
    two-high threshold of the firm's newest project (``threshold_new`` for projects from
    ``since_year``, else ``threshold_old``). Metered electricity, gas and water are a lower
    bound of comprehensive energy use, and the evidence says so."""
    kgce = (
        pl.col("kwh").fill_null(0) * factors.electricity
        + pl.col("gas_m3").fill_null(0) * factors.gas
        + pl.col("water_t").fill_null(0) * factors.water
    )
    year = (
        months.filter(pl.col("month_no").is_between(-11, 0))
        .group_by("firm_id")
        .agg(tce=(kgce / 1000).sum(), months=pl.len())
    )
    new = pl.col("newest_year").fill_null(0) >= rule.param("since_year")
    threshold = (
        pl.when(new).then(rule.param("threshold_new")).otherwise(rule.param("threshold_old"))
    )
    return (
        year.join(projects, on="firm_id", how="left")
        .with_columns(threshold=threshold.cast(pl.Float64))
        .filter(pl.col("tce") >= pl.col("threshold"))
        .select(
            "firm_id",
            tce=pl.col("tce").round(1),
            threshold=pl.col("threshold"),
            months=pl.col("months"),
            newest_project_year=pl.col("newest_year"),
            basis=pl.lit("计量电、气、水折标，为综合能耗下限 / metered only: a lower bound"),
        )
    )

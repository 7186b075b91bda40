"""Data-quality rules, for field staff: incomplete days, offline terminals, meter resets
and implausible jumps. Kept apart from the intensity rules: a firm-day with a data problem
is not judged by them at all."""

from __future__ import annotations

from datetime import date

import polars as pl

from alerts.rulebook import Rule


def incomplete_days(
    features: pl.DataFrame, expected: pl.DataFrame, *, week: date, rule: Rule
) -> pl.DataFrame:
    """Days of the week whose intervals are under ``min_completeness`` of those the firm's
    meters in service should have given (a day with no data at all counts as 0 %)."""
    threshold = float(rule.param("min_completeness"))
    got = features.filter(pl.col("day") >= week).select("firm_id", "day", "intervals")
    days = (
        expected.filter(pl.col("expected") > 0)
        .join(got, on=["firm_id", "day"], how="left")
        .with_columns(completeness=pl.col("intervals").fill_null(0) / pl.col("expected"))
        .filter(pl.col("completeness") < threshold)
    )
    return (
        days.sort("day")
        .group_by("firm_id")
        .agg(
            bad_days=pl.len(),
            days=pl.col("day").cast(pl.String),
            completeness_pct=(pl.col("completeness") * 100).round(1),
        )
        .with_columns(min_completeness_pct=pl.lit(round(threshold * 100)))
    )


def offline(terminals: pl.DataFrame, *, rule: Rule) -> pl.DataFrame:
    """Terminals offline for more than ``hours`` at the end of the week."""
    hours = float(rule.param("hours"))
    return (
        terminals.filter(pl.col("hours") > hours)
        .sort("meter")
        .group_by("firm_id")
        .agg(
            meters=pl.len(),
            codes=pl.col("meter"),
            longest_hours=pl.col("hours").max().round(1),
        )
        .with_columns(hours=pl.lit(hours))
    )


def meter_events(events: pl.DataFrame) -> pl.DataFrame:
    """Firms whose meters reset or jumped implausibly during the week."""
    return events.filter(pl.col("events") > 0)

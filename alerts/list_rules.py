"""The monitored lists (policy tasks 1-2): a firm on a list is reported every week whether
or not another rule fires, and so is a firm whose per-mu class was D two years running."""

from __future__ import annotations

from datetime import date

import polars as pl

LIST_NAMES = {
    "d_class": "亩均评价D类",
    "unrectified_d": "D类未整改",
    "high_energy": "高耗能企业",
    "land_reclaim": "低效用地待盘活",
}


def monitored(lists: pl.DataFrame) -> pl.DataFrame:
    """Firms on a list during the week, with the lists (Chinese names) and since when."""
    named = lists.with_columns(
        name=pl.col("list").replace_strict(LIST_NAMES, default=pl.col("list"))
    ).sort("list")
    return named.group_by("firm_id").agg(
        lists=pl.col("name").str.join("、"),
        codes=pl.col("list"),
        since=pl.col("since").min().cast(pl.String),
    )


def d_two_years(classes: pl.DataFrame, *, week: date) -> pl.DataFrame:
    """Class D in the two latest evaluated years before the week's year, consecutively."""
    latest = (
        classes.filter(pl.col("year") < week.year)
        .sort("firm_id", "year", descending=[False, True])
        .group_by("firm_id", maintain_order=True)
        .head(2)
        .group_by("firm_id")
        .agg(years=pl.col("year"), classes=pl.col("class"))
    )
    return latest.filter(
        (pl.col("classes").list.len() == 2)
        & (pl.col("classes").list.eval(pl.element() == "D").list.all())
        & ((pl.col("years").list.first() - pl.col("years").list.last()) == 1)
    ).select("firm_id", years=pl.col("years").list.sort().cast(pl.List(pl.String)).list.join("、"))

"""Day types the rules compare like with like by: a working day, a Saturday, a Sunday,
or a holiday (statutory holidays and customary shutdowns, table ``holidays``). An adjusted
working day (调休上班) on a weekend is a working day. Saturdays and Sundays are apart: many
firms work Saturdays, and a window with one Sunday more than Saturdays would otherwise put
the weekend median at Sunday level and flag every Saturday as a surge."""

from __future__ import annotations

import enum
from datetime import date, timedelta

import polars as pl


class DayType(enum.StrEnum):
    WORKDAY = "workday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"
    HOLIDAY = "holiday"


def day_types(first: date, end: date, holidays: pl.DataFrame) -> pl.DataFrame:
    """One row per day in [first, end): ``day``, ``day_type``, ``holiday`` (its name)."""
    days = pl.DataFrame({"day": pl.date_range(first, end - timedelta(days=1), eager=True)})
    kinds = holidays.select("day", "kind", pl.col("name").alias("holiday"))
    return (
        days.join(kinds, on="day", how="left")
        .with_columns(
            day_type=pl.when(pl.col("kind").is_in(["holiday", "shutdown"]))
            .then(pl.lit(DayType.HOLIDAY.value))
            .when(pl.col("kind") == "workday")
            .then(pl.lit(DayType.WORKDAY.value))
            .when(pl.col("day").dt.weekday() == 6)
            .then(pl.lit(DayType.SATURDAY.value))
            .when(pl.col("day").dt.weekday() == 7)
            .then(pl.lit(DayType.SUNDAY.value))
            .otherwise(pl.lit(DayType.WORKDAY.value))
        )
        .select("day", "day_type", "holiday")
    )

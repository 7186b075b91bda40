"""Weekly output apportioned from monthly figures by working days (pure)."""

from __future__ import annotations

from datetime import date

import polars as pl

from alerts.accounting import Period, apportioned_output, periods
from alerts.daytypes import day_types

# National Day 2026: 1-7 October off, Saturday 10 October a working day.
HOLIDAYS = pl.DataFrame(
    {
        "day": [*(date(2026, 10, d) for d in range(1, 8)), date(2026, 10, 10)],
        "kind": ["holiday"] * 7 + ["workday"],
        "name": ["国庆节"] * 7 + ["国庆节调休"],
    }
)
TYPES = day_types(date(2026, 9, 1), date(2026, 12, 1), HOLIDAYS)
FIGURES = pl.DataFrame(
    {
        "month": [date(2026, 9, 1), date(2026, 10, 1)],
        "output_value": [2_200_000.0, 1_800_000.0],
        "value_added": [440_000.0, 360_000.0],
    }
)


def test_a_holiday_week_carries_its_working_days_share() -> None:
    # October 2026 has 22 weekdays, 5 of them in the holiday, plus Saturday the 10th: 18
    # working days; the week of 5 October works on the 8th, 9th and 10th: 3/18.
    output, value_added, basis = apportioned_output(
        FIGURES, TYPES, Period("week", date(2026, 10, 5), date(2026, 10, 12))
    )
    assert basis == "apportioned"
    assert output == 1_800_000 * 3 / 18
    assert value_added == 360_000 * 3 / 18


def test_whole_months_are_reported_and_a_missing_month_is_partial() -> None:
    def over(first: date, end: date) -> tuple[float | None, float | None, str]:
        return apportioned_output(FIGURES, TYPES, Period("m", first, end))

    assert over(date(2026, 9, 1), date(2026, 11, 1)) == (
        4_000_000.0,
        800_000.0,
        "reported",
    )
    _, _, basis = apportioned_output(
        FIGURES, TYPES, Period("m", date(2026, 9, 1), date(2026, 12, 1))
    )
    assert basis == "partial"
    assert apportioned_output(FIGURES, TYPES, Period("m", date(2026, 11, 2), date(2026, 11, 9)))[
        2
    ] == ("missing")


def test_periods_of_a_week() -> None:
    got = {p.name: (p.start, p.end) for p in periods(date(2026, 11, 23))}
    assert got == {
        "week": (date(2026, 11, 23), date(2026, 11, 30)),
        "month_to_date": (date(2026, 11, 1), date(2026, 11, 30)),
        "year_to_date": (date(2026, 1, 1), date(2026, 11, 30)),
        "rolling_12_months": (date(2025, 11, 1), date(2026, 11, 1)),
    }

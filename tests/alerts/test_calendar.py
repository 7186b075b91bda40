"""Bucket arithmetic in Asia/Shanghai time and the comparison buckets (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.calendar import (
    Granularity,
    ceil,
    count,
    floor,
    grid,
    parse_month,
    parse_week,
    step,
    year_earlier,
    year_earlier_bound,
)
from alerts.trends.series import _grid as series_grid
from meterhub.reading import LOCAL_TZ

G = Granularity


def t(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        (G.MIN15, t(2026, 3, 4, 10, 30)),
        (G.HOUR, t(2026, 3, 4, 10)),
        (G.DAY, t(2026, 3, 4)),
        (G.WEEK, t(2026, 3, 2)),  # Monday
        (G.MONTH, t(2026, 3, 1)),
    ],
)
def test_floor(granularity: Granularity, expected: datetime) -> None:
    assert floor(t(2026, 3, 4, 10, 44, 59), granularity) == expected


def test_local_midnight_is_16_utc_the_day_before() -> None:
    # 2026-03-01T17:00Z is already 2 March in Shanghai.
    day = floor(datetime(2026, 3, 1, 17, tzinfo=UTC), G.DAY)
    assert day == t(2026, 3, 2)
    assert day.astimezone(UTC) == datetime(2026, 3, 1, 16, tzinfo=UTC)
    # Naive times are Shanghai wall-clock time.
    assert floor(datetime(2026, 3, 2, 0, 30), G.DAY) == t(2026, 3, 2)


def test_ceil_grid_and_count() -> None:
    assert ceil(t(2026, 3, 4), G.DAY) == t(2026, 3, 4)
    assert ceil(t(2026, 3, 4, 0, 1), G.DAY) == t(2026, 3, 5)
    assert ceil(t(2026, 3, 4), G.WEEK) == t(2026, 3, 9)
    assert ceil(t(2026, 12, 15), G.MONTH) == t(2027, 1, 1)
    assert grid(t(2026, 1, 31), t(2026, 4, 1), G.MONTH) == [
        t(2026, 1, 1),
        t(2026, 2, 1),
        t(2026, 3, 1),
    ]
    assert grid(t(2026, 3, 1), t(2026, 3, 10), G.WEEK) == [
        t(2026, 2, 23),
        t(2026, 3, 2),
        t(2026, 3, 9),
    ]
    assert count(t(2026, 3, 1), t(2026, 3, 10), G.WEEK) == 3
    assert count(t(2025, 11, 3), t(2026, 2, 2), G.MONTH) == 4
    assert count(t(2026, 3, 1), t(2026, 3, 2), G.MIN15) == 96
    assert step(t(2026, 1, 1), G.MONTH, -2) == t(2025, 11, 1)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(list(Granularity)),
)
def test_grid_matches_count_and_covers_the_instant(
    when: datetime, granularity: Granularity
) -> None:
    start = floor(when, granularity)
    assert start <= when.replace(tzinfo=LOCAL_TZ) < step(start, granularity)
    end = step(start, granularity, 3)
    assert grid(when, end, granularity) == [step(start, granularity, i) for i in range(3)]
    assert count(when, end, granularity) == 3


@given(  # from 1992: Asia/Shanghai kept daylight saving time until 1991
    st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(list(Granularity)),
    st.integers(min_value=0, max_value=40),
)
def test_the_series_grid_in_polars_is_the_calendar_grid(
    when: datetime, granularity: Granularity, buckets: int
) -> None:
    start = floor(when, granularity)
    end = step(start, granularity, buckets)
    expected = [b.astimezone(UTC) for b in grid(start, end, granularity)]
    assert series_grid(start, end, granularity).to_list() == expected


def test_year_on_year_counterparts() -> None:
    assert year_earlier(t(2028, 3, 1), G.DAY) == t(2027, 3, 1)
    assert year_earlier(t(2028, 2, 28), G.DAY) == t(2027, 2, 28)
    assert year_earlier(t(2028, 2, 29), G.DAY) is None
    assert year_earlier(t(2028, 2, 29, 10, 15), G.MIN15) is None
    assert year_earlier(t(2029, 2, 28), G.DAY) == t(2028, 2, 28)
    assert year_earlier(t(2028, 2, 1), G.MONTH) == t(2027, 2, 1)
    # ISO weeks: week 9 of 2028 (from 28 Feb) -> week 9 of 2027 (from 1 March).
    assert year_earlier(t(2028, 2, 28), G.WEEK) == t(2027, 3, 1)
    # 2026 has an ISO week 53 (from 28 Dec); 2025 has none.
    assert year_earlier(t(2026, 12, 28), G.WEEK) is None
    assert year_earlier_bound(t(2026, 12, 28), G.WEEK) == t(2025, 12, 29)
    assert year_earlier_bound(t(2028, 2, 29), G.DAY) == t(2027, 2, 28)
    assert year_earlier_bound(t(2028, 3, 1), G.DAY) == t(2027, 3, 1)


def test_parse_week_and_month() -> None:
    assert parse_week("2026-W10") == t(2026, 3, 2)
    assert parse_week("2026-W53") == t(2026, 12, 28)
    assert parse_week("2026-W01") == t(2025, 12, 29)
    assert parse_month("2028-02") == t(2028, 2, 1)
    for bad in ("2025-W53", "2026-10", "2026W10"):
        with pytest.raises(ValueError):
            parse_week(bad)
    for bad in ("2026-13", "2026-1", "202603"):
        with pytest.raises(ValueError):
            parse_month(bad)
    assert parse_week("2026-W10") + timedelta(weeks=1) == t(2026, 3, 9)

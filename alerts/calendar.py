"""Bucket arithmetic in Asia/Shanghai time: alignment, grids and comparison buckets.

Buckets start at local boundaries: 15 minutes, hours, midnight, Monday 00:00 (ISO weeks)
and the 1st of the month. Comparisons:

* year-on-year (同比): the same calendar bucket one year earlier: the same local wall-clock
  time and date for 15-minute, hour and day buckets, the same month, and the same ISO week
  number for weeks. A bucket with no counterpart (29 February; ISO week 53 when the earlier
  year has 52 weeks) has no comparison: it is never matched with 28 February or 1 March,
  which have their own counterparts.
* period-on-period (环比): the bucket immediately before (previous day, week, month...).
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

from meterhub.reading import LOCAL_TZ


class Granularity(enum.StrEnum):
    MIN15 = "15min"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Compare(enum.StrEnum):
    YOY = "yoy"
    POP = "pop"


_FIXED = {
    Granularity.MIN15: timedelta(minutes=15),
    Granularity.HOUR: timedelta(hours=1),
    Granularity.DAY: timedelta(days=1),
    Granularity.WEEK: timedelta(weeks=1),
}


def local(t: datetime) -> datetime:
    """``t`` in Asia/Shanghai; a naive ``t`` is taken as Asia/Shanghai wall-clock time."""
    return t.replace(tzinfo=LOCAL_TZ) if t.tzinfo is None else t.astimezone(LOCAL_TZ)


def floor(t: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket containing ``t``."""
    t = local(t)
    if granularity is Granularity.MIN15:
        return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
    if granularity is Granularity.HOUR:
        return t.replace(minute=0, second=0, microsecond=0)
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return midnight
    if granularity is Granularity.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    return midnight.replace(day=1)


def step(t: datetime, granularity: Granularity, n: int = 1) -> datetime:
    """``t`` moved by ``n`` buckets (calendar months for months)."""
    if granularity is Granularity.MONTH:
        months = t.year * 12 + t.month - 1 + n
        return t.replace(year=months // 12, month=months % 12 + 1)
    # Asia/Shanghai has no daylight saving: wall-clock and absolute steps agree.
    return local(t + n * _FIXED[granularity])


def ceil(t: datetime, granularity: Granularity) -> datetime:
    """The first bucket boundary at or after ``t``."""
    start = floor(t, granularity)
    return start if start == local(t) else step(start, granularity)


def grid(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """Bucket starts from ``start`` (aligned) up to, not including, ``end``."""
    out, t = [], floor(start, granularity)
    while t < end:
        out.append(t)
        t = step(t, granularity)
    return out


def count(start: datetime, end: datetime, granularity: Granularity) -> int:
    """How many buckets `grid` would return, without building it."""
    start, end = floor(start, granularity), ceil(end, granularity)
    if granularity is Granularity.MONTH:
        return (end.year - start.year) * 12 + end.month - start.month
    return int((end - start) / _FIXED[granularity])


def _iso_monday(year: int, week: int) -> date | None:
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:
        return None


def year_earlier(bucket: datetime, granularity: Granularity) -> datetime | None:
    """The year-on-year counterpart of ``bucket``, or None when there is none."""
    bucket = local(bucket)
    if granularity is Granularity.WEEK:
        year, week, _ = bucket.isocalendar()
        monday = _iso_monday(year - 1, week)
        return None if monday is None else datetime.combine(monday, bucket.timetz())
    if bucket.month == 2 and bucket.day == 29:
        return None
    return bucket.replace(year=bucket.year - 1)


def year_earlier_bound(bound: datetime, granularity: Granularity) -> datetime:
    """A range bound one year earlier, for the comparison of whole-range totals: like
    `year_earlier`, but 29 February maps to 28 February and ISO week 53 to week 1 of the
    following year (the Monday after week 52), so that a range always maps to a range."""
    bound = local(bound)
    mapped = year_earlier(bound, granularity)
    if mapped is not None:
        return mapped
    if granularity is Granularity.WEEK:
        year = bound.isocalendar()[0]
        return datetime.combine(date.fromisocalendar(year, 1, 1), bound.timetz())
    return bound.replace(year=bound.year - 1, day=28)


def parse_week(text: str) -> datetime:
    """``YYYY-Www`` (ISO week) -> its Monday 00:00 Asia/Shanghai; ValueError if malformed."""
    year, sep, week = text.partition("-W")
    if not sep or len(year) != 4 or len(week) != 2:
        raise ValueError(f"expected YYYY-Www, e.g. 2026-W10, not {text!r}")
    return datetime.combine(
        date.fromisocalendar(int(year), int(week), 1), datetime.min.time(), LOCAL_TZ
    )


def parse_month(text: str) -> datetime:
    """``YYYY-MM`` -> the 1st of that month 00:00 Asia/Shanghai; ValueError if malformed."""
    year, sep, month = text.partition("-")
    if not sep or len(year) != 4 or len(month) != 2:
        raise ValueError(f"expected YYYY-MM, e.g. 2026-03, not {text!r}")
    return datetime(int(year), int(month), 1, tzinfo=LOCAL_TZ)

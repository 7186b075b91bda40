"""What the weekly analytics read, as polars frames: firms, daily features, day types,
monthly energy and output, lists, projects, terminals and meter events. Everything comes
from rollups, daily features and the registry, never from raw readings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import polars as pl

from alerts.frames import ColumnKind, Fixed, FloatArray, fetch, fetch_fixed
from meterhub.db import Conn
from meterhub.reading import LOCAL_TZ

HOURS = tuple(f"h_{h}" for h in range(24))

FIRMS = pl.Schema(
    {
        "firm_id": pl.Int64,
        "name": pl.String,
        "credit_code": pl.String,
        "town": pl.String,
        "industry": pl.String,
        "above_scale": pl.Boolean,
        "land_mu": pl.Float64,
    }
)
# The town is the one the firm belonged to at the end of the week (`firm_towns`): a later
# move does not carry the week along.
_FIRMS = """
SELECT f.id, f.name, f.credit_code, ft.town, f.industry, f.above_scale, f.land_mu::float8
FROM firms f
JOIN firm_towns ft ON ft.firm_id = f.id AND ft.valid_from < $1 AND ft.valid_to >= $1
WHERE EXISTS (SELECT 1 FROM meters m WHERE m.firm_id = f.id AND m.installed_at < $1)
ORDER BY f.id
"""

DAYS: list[tuple[str, ColumnKind]] = [
    ("firm_id", Fixed.INT8),
    ("day", Fixed.DATE),
    ("energy", Fixed.FLOAT8),
    ("intervals", Fixed.INT4),
    ("expected", Fixed.INT4),
    ("night", Fixed.FLOAT8),  # energy of the rule's night hours; NaN (an hour missing): null
]
_DAYS = """
SELECT firm_id, day, energy, intervals, expected, {night}
FROM firm_day_features WHERE day >= $1 AND day < $2
"""

HOURLY: list[tuple[str, ColumnKind]] = [
    ("firm_id", Fixed.INT8),
    ("day", Fixed.DATE),
    # h_0 .. h_23 as float32 (load levels need no more, and 20,000 firms' 35 days of hours
    # are 17 M values); NaN (no data that hour) becomes null.
    ("h", FloatArray(24, single=True)),
]
_HOURLY = """
SELECT firm_id, day, hourly FROM firm_day_features WHERE day >= $1 AND day < $2
"""


async def _days(conn: Conn, first: date, end: date, night_hours: list[int]) -> pl.DataFrame:
    night = " + ".join(f"hourly[{h + 1}]" for h in night_hours) or "0::float8"
    frame = await fetch_fixed(conn, _DAYS.format(night=night), first, end, columns=DAYS)
    return frame.with_columns(pl.col("night").fill_nan(None))


async def _hourly(conn: Conn, first: date, end: date) -> pl.DataFrame:
    frame = await fetch_fixed(conn, _HOURLY, first, end, columns=HOURLY)
    return frame.with_columns(pl.col(HOURS).fill_nan(None))


# The electricity meters' service periods, from which the quarter hours each firm should
# have given on each day of the week are computed (a day with no data at all has no row in
# the features, so its expectation cannot come from there).
METERS = pl.Schema({"firm_id": pl.Int64, "installed": pl.Float64, "removed": pl.Float64})
_METERS = """
SELECT firm_id, extract(epoch FROM installed_at)::float8,
       extract(epoch FROM removed_at)::float8
FROM meters WHERE utility = 'electricity' AND installed_at < $2
  AND (removed_at IS NULL OR removed_at > $1)
"""


def expected_quarters(meters: pl.DataFrame, first: date, days: int) -> pl.DataFrame:
    """Quarter hours per firm and day of [first, first + days) its meters were in service."""
    starts = pl.DataFrame(
        {
            "day": [first + timedelta(days=i) for i in range(days)],
            "d0": [
                datetime.combine(first + timedelta(days=i), time(), LOCAL_TZ).timestamp()
                for i in range(days)
            ],
        }
    )
    seconds = (
        pl.min_horizontal(pl.col("d0") + 86_400, pl.col("removed").fill_null(float("inf")))
        - pl.max_horizontal(pl.col("d0"), pl.col("installed"))
    ).clip(lower_bound=0)
    return (
        meters.join(starts, how="cross")
        .with_columns(quarters=(seconds / 900).ceil().cast(pl.Int64))
        .group_by("firm_id", "day")
        .agg(expected=pl.col("quarters").sum())
    )


HOLIDAYS = pl.Schema({"day": pl.Date, "kind": pl.String, "name": pl.String})
_HOLIDAYS = "SELECT day, kind, name FROM holidays WHERE day >= $1 AND day < $2"

MONTH_FEATURES: list[tuple[str, ColumnKind]] = [
    ("firm_id", Fixed.INT8),
    ("month", Fixed.DATE),
    ("kwh", Fixed.FLOAT8),
    ("intervals", Fixed.INT4),
    ("expected", Fixed.INT4),
]
_MONTH_FEATURES = """
SELECT firm_id, month, kwh, intervals, expected FROM firm_month_features
WHERE month >= $1 AND month < $2
"""

OTHER_UTILITIES = pl.Schema(
    {"firm_id": pl.Int64, "month": pl.Date, "gas_m3": pl.Float64, "water_t": pl.Float64}
)
_OTHER_UTILITIES = """
SELECT firm_id, (bucket AT TIME ZONE 'Asia/Shanghai')::date,
       sum(energy) FILTER (WHERE utility = 'gas'), sum(energy) FILTER (WHERE utility = 'water')
FROM firm_rollups
WHERE granularity = 'month' AND utility IN ('gas', 'water')
  AND bucket >= ($1::date::timestamp AT TIME ZONE 'Asia/Shanghai')
  AND bucket < ($2::date::timestamp AT TIME ZONE 'Asia/Shanghai')
GROUP BY 1, 2
"""


async def load_monthly(conn: Conn, first: date, end: date) -> pl.DataFrame:
    """Each firm's months: kWh with completeness (from the month features) and gas and water
    (from the firm rollups, few firms have them)."""
    electricity = await fetch_fixed(conn, _MONTH_FEATURES, first, end, columns=MONTH_FEATURES)
    others = await fetch(conn, _OTHER_UTILITIES, first, end, schema=OTHER_UTILITIES)
    return electricity.join(others, on=["firm_id", "month"], how="left")


_FIGURES = (
    "output_value",
    "value_added",
    "tax_paid",
    "employees",
    "rnd_spend",
    "main_revenue",
    "emissions_t",
)
OUTPUT: list[tuple[str, ColumnKind]] = [
    ("firm_id", Fixed.INT8),
    ("month", Fixed.DATE),
    *((name, Fixed.FLOAT8) for name in _FIGURES),
]
# NaN stands for a missing figure on the wire (one fixed layout) and is null again after.
_OUTPUT = f"""
SELECT firm_id, month, {", ".join(f"coalesce({n}::float8, 'NaN')" for n in _FIGURES)}
FROM output_figures WHERE month >= $1 AND month < $2
"""


async def load_output(conn: Conn, first: date, end: date) -> pl.DataFrame:
    frame = await fetch_fixed(conn, _OUTPUT, first, end, columns=OUTPUT)
    return frame.with_columns(pl.col(_FIGURES).fill_nan(None))


LISTS = pl.Schema({"firm_id": pl.Int64, "list": pl.String, "since": pl.Date})
_LISTS = """
SELECT firm_id, list, since FROM firm_lists
WHERE since < $2 AND (until IS NULL OR until > $1)
"""

PROJECTS = pl.Schema({"firm_id": pl.Int64, "newest_year": pl.Int64, "projects": pl.Int64})
_PROJECTS = "SELECT firm_id, max(commissioned_year), count(*) FROM firm_projects GROUP BY 1"

CLASSES = pl.Schema({"firm_id": pl.Int64, "year": pl.Int64, "class": pl.String})
# Official classes win over computed ones for the same year.
_CLASSES = """
SELECT DISTINCT ON (firm_id, year) firm_id, year, class FROM evaluations
WHERE year >= $1 AND class IS NOT NULL
ORDER BY firm_id, year, (source = 'official') DESC
"""

OFFLINE = pl.Schema({"firm_id": pl.Int64, "meter": pl.String, "hours": pl.Float64})
_OFFLINE = """
SELECT m.firm_id, m.code,
       extract(epoch FROM $1::timestamptz - coalesce(t.last_success_at, m.installed_at)) / 3600
FROM terminal_status t JOIN meters m ON m.id = t.meter_id
WHERE NOT t.online AND m.removed_at IS NULL
"""

EVENTS = pl.Schema({"firm_id": pl.Int64, "events": pl.Int64})
_EVENTS = """
SELECT m.firm_id, count(*) FROM interval_events e JOIN meters m ON m.id = e.meter_id
WHERE e.kind IN ('reset', 'excess')
  AND e.start >= ($1::date::timestamp AT TIME ZONE 'Asia/Shanghai')
  AND e.start < ($2::date::timestamp AT TIME ZONE 'Asia/Shanghai')
GROUP BY 1
"""


@dataclass(frozen=True, slots=True)
class Window:
    """The days and months one weekly run reads."""

    week: date  # Monday
    history_days: int = 56  # 8 weeks before: the 8-week baselines (and 28-day load levels)
    hourly_days: int = 28  # hourly energies for the load levels and the stoppage runs
    months: int = 24  # monthly energy and output for baselines and year on year

    @property
    def end(self) -> date:
        return self.week + timedelta(days=7)

    @property
    def first_day(self) -> date:
        return self.week - timedelta(days=self.history_days)

    @property
    def first_hourly_day(self) -> date:
        return self.week - timedelta(days=self.hourly_days)

    @property
    def first_month(self) -> date:
        months = self.week.year * 12 + self.week.month - 1 - self.months
        return date(months // 12, months % 12 + 1, 1)

    @property
    def this_month(self) -> date:
        return self.week.replace(day=1)


@dataclass(frozen=True, slots=True)
class Inputs:
    firms: pl.DataFrame
    features: pl.DataFrame  # per firm and day: energy, intervals, expected, night
    hourly: pl.DataFrame  # per firm and day of the last ``hourly_days``: h_0 .. h_23
    expected: pl.DataFrame  # per firm and day of the judged week
    holidays: pl.DataFrame
    monthly: pl.DataFrame
    output: pl.DataFrame
    lists: pl.DataFrame
    projects: pl.DataFrame
    classes: pl.DataFrame
    offline: pl.DataFrame
    events: pl.DataFrame


async def load(conn: Conn, window: Window, *, night_hours: list[int]) -> Inputs:
    """Everything one weekly run needs (run it in a repeatable-read transaction)."""
    week_end_at = datetime.combine(window.end, time(), LOCAL_TZ)
    week_at = datetime.combine(window.week, time(), LOCAL_TZ)
    meters = await fetch(conn, _METERS, week_at, week_end_at, schema=METERS)
    return Inputs(
        firms=await fetch(conn, _FIRMS, week_end_at, schema=FIRMS),
        features=await _days(conn, window.first_day, window.end, night_hours),
        hourly=await _hourly(conn, window.first_hourly_day, window.end),
        expected=expected_quarters(meters, window.week, 7),
        holidays=await fetch(conn, _HOLIDAYS, window.first_day, window.end, schema=HOLIDAYS),
        monthly=await load_monthly(conn, window.first_month, window.end),
        output=await load_output(conn, window.first_month, window.end),
        lists=await fetch(conn, _LISTS, window.week, window.end, schema=LISTS),
        projects=await fetch(conn, _PROJECTS, schema=PROJECTS),
        classes=await fetch(conn, _CLASSES, window.week.year - 3, schema=CLASSES),
        offline=await fetch(conn, _OFFLINE, week_end_at, schema=OFFLINE),
        events=await fetch(conn, _EVENTS, window.week, window.end, schema=EVENTS),
    )

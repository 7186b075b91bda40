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
_FIRMS = """
SELECT id, name, credit_code, town, industry, above_scale, land_mu::float8
FROM firms
WHERE EXISTS (SELECT 1 FROM meters m WHERE m.firm_id = firms.id AND m.installed_at < $1)
ORDER BY id
"""

FEATURES: list[tuple[str, ColumnKind]] = [
    ("firm_id", Fixed.INT8),
    ("day", Fixed.DATE),
    ("energy", Fixed.FLOAT8),
    ("intervals", Fixed.INT4),
    ("expected", Fixed.INT4),
    ("h", FloatArray(24)),  # h_0 .. h_23; NaN (no data that hour) becomes null
]
_FEATURES = """
SELECT firm_id, day, energy, intervals, expected, hourly
FROM firm_day_features WHERE day >= $1 AND day < $2
"""


async def _features(conn: Conn, first: date, end: date) -> pl.DataFrame:
    frame = await fetch_fixed(conn, _FEATURES, first, end, columns=FEATURES)
    return frame.with_columns(pl.col(HOURS).fill_nan(None))


# Quarter hours each firm's electricity meters should have given on each day of the week.
EXPECTED = pl.Schema({"firm_id": pl.Int64, "day": pl.Date, "expected": pl.Int64})
_EXPECTED = """
SELECT m.firm_id, d.day::date,
       sum(ceil(extract(epoch FROM
           least(d.day_end, coalesce(m.removed_at, d.day_end))
           - greatest(d.day_start, m.installed_at)) / 900))::int
FROM (SELECT g::date AS day, (g::date::timestamp AT TIME ZONE 'Asia/Shanghai') AS day_start,
             ((g::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai') AS day_end
      FROM generate_series($1::date, $2::date - 1, interval '1 day') g) d
JOIN meters m ON m.utility = 'electricity' AND m.installed_at < d.day_end
             AND (m.removed_at IS NULL OR m.removed_at > d.day_start)
GROUP BY 1, 2
"""

HOLIDAYS = pl.Schema({"day": pl.Date, "kind": pl.String, "name": pl.String})
_HOLIDAYS = "SELECT day, kind, name FROM holidays WHERE day >= $1 AND day < $2"

MONTHLY = pl.Schema(
    {
        "firm_id": pl.Int64,
        "month": pl.Date,
        "kwh": pl.Float64,
        "gas_m3": pl.Float64,
        "water_t": pl.Float64,
        "intervals": pl.Int64,
        "expected": pl.Int64,
    }
)
# Each firm's month: energy by utility, and electricity intervals present against those its
# meters in service should have given (a month under the completeness threshold feeds no
# intensity or baseline rule).
_MONTHLY = """
WITH months AS (
    SELECT g::date AS month, (g::date::timestamp AT TIME ZONE 'Asia/Shanghai') AS m0,
           ((g::date + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai') AS m1
    FROM generate_series($1::date, $2::date - 1, interval '1 month') g),
energy AS (
    SELECT firm_id, (bucket AT TIME ZONE 'Asia/Shanghai')::date AS month,
           sum(energy) FILTER (WHERE utility = 'electricity') AS kwh,
           sum(energy) FILTER (WHERE utility = 'gas') AS gas_m3,
           sum(energy) FILTER (WHERE utility = 'water') AS water_t
    FROM firm_rollups
    WHERE granularity = 'month' AND bucket >= (SELECT min(m0) FROM months)
      AND bucket < (SELECT max(m1) FROM months)
    GROUP BY 1, 2),
present AS (
    SELECT m.firm_id, (r.bucket AT TIME ZONE 'Asia/Shanghai')::date AS month,
           sum(r.intervals) AS intervals
    FROM meter_rollups r JOIN meters m ON m.id = r.meter_id AND m.utility = 'electricity'
    WHERE r.granularity = 'month' AND r.bucket >= (SELECT min(m0) FROM months)
      AND r.bucket < (SELECT max(m1) FROM months)
    GROUP BY 1, 2),
expected AS (
    SELECT m.firm_id, mo.month,
           sum(ceil(extract(epoch FROM least(mo.m1, coalesce(m.removed_at, mo.m1))
                                       - greatest(mo.m0, m.installed_at)) / 900)) AS expected
    FROM months mo JOIN meters m ON m.utility = 'electricity' AND m.installed_at < mo.m1
                                AND (m.removed_at IS NULL OR m.removed_at > mo.m0)
    GROUP BY 1, 2)
SELECT e.firm_id, e.month, e.kwh, e.gas_m3, e.water_t, coalesce(p.intervals, 0),
       coalesce(x.expected, 0)::bigint
FROM energy e
LEFT JOIN present p ON p.firm_id = e.firm_id AND p.month = e.month
LEFT JOIN expected x ON x.firm_id = e.firm_id AND x.month = e.month
"""

OUTPUT = pl.Schema(
    {
        "firm_id": pl.Int64,
        "month": pl.Date,
        "output_value": pl.Float64,
        "value_added": pl.Float64,
        "tax_paid": pl.Float64,
        "employees": pl.Float64,
        "rnd_spend": pl.Float64,
        "main_revenue": pl.Float64,
        "emissions_t": pl.Float64,
    }
)
_OUTPUT = """
SELECT firm_id, month, output_value::float8, value_added::float8, tax_paid::float8,
       employees::float8, rnd_spend::float8, main_revenue::float8, emissions_t::float8
FROM output_figures WHERE month >= $1 AND month < $2
"""

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
    history_days: int = 84  # 12 weeks before: 28-day load distribution, 8-week baselines
    months: int = 24  # monthly energy and output for baselines and year on year

    @property
    def end(self) -> date:
        return self.week + timedelta(days=7)

    @property
    def first_day(self) -> date:
        return self.week - timedelta(days=self.history_days)

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
    features: pl.DataFrame
    expected: pl.DataFrame
    holidays: pl.DataFrame
    monthly: pl.DataFrame
    output: pl.DataFrame
    lists: pl.DataFrame
    projects: pl.DataFrame
    classes: pl.DataFrame
    offline: pl.DataFrame
    events: pl.DataFrame


async def load(conn: Conn, window: Window) -> Inputs:
    """Everything one weekly run needs (run it in a repeatable-read transaction)."""
    week_end_at = datetime.combine(window.end, time(), LOCAL_TZ)
    return Inputs(
        firms=await fetch(conn, _FIRMS, week_end_at, schema=FIRMS),
        features=await _features(conn, window.first_day, window.end),
        expected=await fetch(conn, _EXPECTED, window.week, window.end, schema=EXPECTED),
        holidays=await fetch(conn, _HOLIDAYS, window.first_day, window.end, schema=HOLIDAYS),
        monthly=await fetch(conn, _MONTHLY, window.first_month, window.end, schema=MONTHLY),
        output=await fetch(conn, _OUTPUT, window.first_month, window.end, schema=OUTPUT),
        lists=await fetch(conn, _LISTS, window.week, window.end, schema=LISTS),
        projects=await fetch(conn, _PROJECTS, schema=PROJECTS),
        classes=await fetch(conn, _CLASSES, window.week.year - 3, schema=CLASSES),
        offline=await fetch(conn, _OFFLINE, week_end_at, schema=OFFLINE),
        events=await fetch(conn, _EVENTS, window.week, window.end, schema=EVENTS),
    )

"""A firm's year (or year to date) as the evaluation and the carbon grades read it: its
registration, the output figures it reported, and its metered energy over **the same
months** (a month without figures contributes no energy either)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from alerts.errors import InvalidPeriodError
from alerts.frames import fetch
from meterhub.db import Conn


@dataclass(frozen=True, slots=True)
class Period:
    """January to ``through_month`` (12: the whole year) of ``year``."""

    year: int
    through_month: int = 12

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2100:
            raise InvalidPeriodError(f"year {self.year} is outside 2000..2100")
        if not 1 <= self.through_month <= 12:
            raise InvalidPeriodError(f"month {self.through_month} is not 1..12")

    @property
    def first(self) -> date:
        return date(self.year, 1, 1)

    @property
    def end(self) -> date:
        """The first day after the period."""
        if self.through_month == 12:
            return date(self.year + 1, 1, 1)
        return date(self.year, self.through_month + 1, 1)

    @property
    def label(self) -> str:
        return str(self.year) if self.through_month == 12 else f"{self.year}-01..{self.ytd}"

    @property
    def ytd(self) -> str:
        return f"{self.year}-{self.through_month:02d}"

    @classmethod
    def parse_month(cls, text: str) -> Period:
        """``2026-10``: January to October 2026."""
        year, sep, month = text.strip().partition("-")
        if not sep or not (year.isdigit() and month.isdigit()):
            raise InvalidPeriodError(f"{text!r} is not a month like 2026-10")
        return cls(int(year), int(month))


YEAR = pl.Schema(
    {
        "firm_id": pl.Int64,
        "town": pl.String,
        "industry": pl.String,
        "above_scale": pl.Boolean,
        "land_mu": pl.Float64,
        "months": pl.Int64,
        "output_value": pl.Float64,
        "value_added": pl.Float64,
        "tax_paid": pl.Float64,
        "employees": pl.Float64,
        "rnd_spend": pl.Float64,
        "main_revenue": pl.Float64,
        "emissions_t": pl.Float64,
        "kwh": pl.Float64,
        "gas_m3": pl.Float64,
        "water_t": pl.Float64,
    }
)
# Amounts in yuan; employees the mean of the months that report them; emissions null
# when no month reports them; energy null when no month of figures has a rollup.
_YEAR = """
WITH figures AS (
    SELECT firm_id, month, output_value, value_added, tax_paid, employees, rnd_spend,
           main_revenue, emissions_t
    FROM output_figures WHERE month >= $1 AND month < $2),
energy AS (
    SELECT firm_id, (bucket AT TIME ZONE 'Asia/Shanghai')::date AS month,
           sum(energy) FILTER (WHERE utility = 'electricity') AS kwh,
           sum(energy) FILTER (WHERE utility = 'gas') AS gas_m3,
           sum(energy) FILTER (WHERE utility = 'water') AS water_t
    FROM firm_rollups
    WHERE granularity = 'month'
      AND bucket >= ($1::date::timestamp AT TIME ZONE 'Asia/Shanghai')
      AND bucket < ($2::date::timestamp AT TIME ZONE 'Asia/Shanghai')
    GROUP BY 1, 2),
totals AS (
    SELECT f.firm_id, count(*) AS months, sum(f.output_value)::float8 AS output_value,
           sum(f.value_added)::float8 AS value_added, sum(f.tax_paid)::float8 AS tax_paid,
           avg(f.employees)::float8 AS employees, sum(f.rnd_spend)::float8 AS rnd_spend,
           sum(f.main_revenue)::float8 AS main_revenue,
           sum(f.emissions_t)::float8 AS emissions_t,
           sum(e.kwh) AS kwh, sum(e.gas_m3) AS gas_m3, sum(e.water_t) AS water_t
    FROM figures f LEFT JOIN energy e ON e.firm_id = f.firm_id AND e.month = f.month
    GROUP BY 1)
SELECT firms.id, firms.town, firms.industry, firms.above_scale, firms.land_mu::float8,
       coalesce(t.months, 0), t.output_value, t.value_added, t.tax_paid, t.employees,
       t.rnd_spend, t.main_revenue, t.emissions_t, t.kwh, t.gas_m3, t.water_t
FROM firms LEFT JOIN totals t ON t.firm_id = firms.id
ORDER BY firms.id
"""


async def load_year(conn: Conn, period: Period) -> pl.DataFrame:
    """Every registered firm with its totals over ``period`` (schema `YEAR`)."""
    return await fetch(conn, _YEAR, period.first, period.end, schema=YEAR)

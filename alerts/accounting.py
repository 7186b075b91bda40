"""Energy accounting for one firm: electricity, gas and water, standard coal by both
electricity coefficients, CO2 from electricity, and intensity per 10k yuan of output and
value added and per mu, for an ISO week, its month, the year to date and the rolling 12
months.

Energy and output are always over the same months. A week has no output figures of its
own: its output is apportioned from the month's figures by working days (a working day of
the month carries 1/working-days of it; weekends and holidays carry none), and the figure
says so (``output_basis``: ``apportioned``). A period whose months lack figures says
``missing``; one that rests on figures older than the period's last month says ``stale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl

from alerts.daytypes import DayType, day_types
from alerts.energy import Basis, Factors, co2_tonnes
from meterhub.db import Conn
from meterhub.settings import Settings

# Whole months come from the month rollups, the days of the week's own month from the
# day rollups (so that the year to date ends with the week).
_ENERGY = """
SELECT (bucket AT TIME ZONE 'Asia/Shanghai')::date AS day, utility, energy, granularity
FROM firm_rollups
WHERE firm_id = $1 AND (
    (granularity = 'month' AND bucket >= ($2::date::timestamp AT TIME ZONE 'Asia/Shanghai')
                           AND bucket < ($3::date::timestamp AT TIME ZONE 'Asia/Shanghai'))
 OR (granularity = 'day' AND bucket >= ($3::date::timestamp AT TIME ZONE 'Asia/Shanghai')
                         AND bucket < ($4::date::timestamp AT TIME ZONE 'Asia/Shanghai')))
"""
_FIGURES = """
SELECT month, output_value::float8, value_added::float8 FROM output_figures
WHERE firm_id = $1 AND month >= $2 AND month < $3
"""
_HOLIDAYS = "SELECT day, kind, name FROM holidays WHERE day >= $1 AND day < $2"
_FACTOR = """
SELECT year, tco2_per_mwh FROM grid_emission_factors
WHERE region = $1 AND kind = $3 AND year <= $2 ORDER BY year DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # week, month, year_to_date, rolling_12_months
    start: date
    end: date  # exclusive


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, n: int) -> date:
    months = d.year * 12 + d.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


def periods(week: date) -> list[Period]:
    """The periods of the profile for the ISO week starting ``week``."""
    month = _month_start(week)
    last_whole = _add_months(month, -1)
    return [
        Period("week", week, week + timedelta(days=7)),
        Period("month_to_date", month, week + timedelta(days=7)),
        Period("year_to_date", date(week.year, 1, 1), week + timedelta(days=7)),
        Period("rolling_12_months", _add_months(last_whole, -11), month),
    ]


def _ratio(numerator: float | None, denominator: float | None, scale: float = 1) -> float | None:
    if numerator is None or not denominator or denominator <= 0:
        return None
    return round(numerator / (denominator / scale), 6)


def apportioned_output(
    figures: pl.DataFrame, types: pl.DataFrame, period: Period
) -> tuple[float | None, float | None, str]:
    """Output and value added over ``period``, each month's figures spread over its working
    days (a whole month carries all of them), with the basis of the figure: ``reported``
    (whole months, all reported), ``apportioned`` (part of a month, its figures reported),
    ``partial`` (some months without figures) or ``missing``."""
    days = types.with_columns(
        month=pl.col("day").dt.truncate("1mo"),
        working=pl.col("day_type") == DayType.WORKDAY.value,
        inside=(pl.col("day") >= period.start) & (pl.col("day") < period.end),
    )
    # A month without a working day (a whole-month shutdown) is spread over all its days.
    months = (
        days.group_by("month")
        .agg(
            workdays=pl.col("working").sum(),
            days=pl.len(),
            inside_work=(pl.col("working") & pl.col("inside")).sum(),
            inside_days=pl.col("inside").sum(),
        )
        .filter(pl.col("inside_days") > 0)
        .with_columns(
            share=pl.when(pl.col("workdays") > 0)
            .then(pl.col("inside_work") / pl.col("workdays"))
            .otherwise(pl.col("inside_days") / pl.col("days")),
            whole=pl.col("inside_days") == pl.col("days"),
        )
        .join(figures, on="month", how="left")
    )
    reported = months.filter(pl.col("output_value").is_not_null())
    if reported.is_empty():
        return None, None, "missing"
    output = float(reported.select((pl.col("output_value") * pl.col("share")).sum()).item())
    value_added = reported.select((pl.col("value_added") * pl.col("share")).sum()).item()
    if reported.height < months.height:
        basis = "partial"
    else:
        basis = "reported" if months["whole"].all() else "apportioned"
    return output, (float(value_added) if value_added is not None else None), basis


async def account(
    conn: Conn, *, firm_id: int, land_mu: float | None, week: date, settings: Settings
) -> list[dict[str, Any]]:
    """The firm's energy accounting for each period of `periods` (``week`` is a Monday)."""
    spans = periods(week)
    first = min(p.start for p in spans)
    end = max(p.end for p in spans)
    month = _month_start(week)
    rows = await conn.fetch(_ENERGY, firm_id, _month_start(first), month, week + timedelta(7))
    energy = pl.DataFrame(
        [dict(r) for r in rows],
        schema={
            "day": pl.Date,
            "utility": pl.String,
            "energy": pl.Float64,
            "granularity": pl.String,
        },
    )
    figures = pl.DataFrame(
        [dict(r) for r in await conn.fetch(_FIGURES, firm_id, _month_start(first), end)],
        schema={"month": pl.Date, "output_value": pl.Float64, "value_added": pl.Float64},
    )
    holidays = pl.DataFrame(
        [dict(r) for r in await conn.fetch(_HOLIDAYS, _month_start(first), _add_months(end, 1))],
        schema={"day": pl.Date, "kind": pl.String, "name": pl.String},
    )
    types = day_types(_month_start(first), _add_months(_month_start(end), 1), holidays)
    factor_row = await conn.fetchrow(
        _FACTOR, settings.grid_factor_region, week.year, settings.grid_factor_kind
    )
    calorific = Factors.of(settings, Basis.CALORIFIC)
    equal = Factors.of(settings, Basis.EQUAL_VALUE)
    out = []
    for period in spans:
        kwh, gas, water = _quantities(_energy_of(energy, period))
        metered = kwh is not None or gas is not None or water is not None
        quantities = {"kwh": kwh or 0.0, "gas_m3": gas or 0.0, "water_t": water or 0.0}
        tce = calorific.tce(**quantities) if metered else None
        output, value_added, basis = apportioned_output(figures, types, period)
        # Energy and output over the same months only: no ratio on partial figures.
        matched = basis in ("reported", "apportioned")
        per_output = output if matched else None
        per_value_added = value_added if matched else None
        out.append(
            {
                "period": period.name,
                "start": period.start,
                "end": period.end,
                "electricity_kwh": kwh,
                "gas_m3": gas,
                "water_t": water,
                "tce_calorific": round(tce, 6) if tce is not None else None,
                "tce_equal_value": round(equal.tce(**quantities), 6) if metered else None,
                "co2_t": (
                    round(co2_tonnes(kwh, factor_row["tco2_per_mwh"]), 6)
                    if kwh is not None and factor_row is not None
                    else None
                ),
                "co2_factor_year": factor_row["year"] if factor_row is not None else None,
                "output_value": output,
                "value_added": value_added,
                "output_basis": basis,
                "kwh_per_10k_output": _ratio(kwh, per_output, 10_000),
                "tce_per_10k_output": _ratio(tce, per_output, 10_000),
                "kwh_per_10k_value_added": _ratio(kwh, per_value_added, 10_000),
                "kwh_per_mu": _ratio(kwh, land_mu),
            }
        )
    return out


def _quantities(used: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """kWh, gas m3 and water t of ``used``; None for a utility without any row."""
    sums = {
        u: float(e) for u, e in used.group_by("utility").agg(pl.col("energy").sum()).iter_rows()
    }
    return sums.get("electricity"), sums.get("gas"), sums.get("water")


def _energy_of(energy: pl.DataFrame, period: Period) -> pl.DataFrame:
    """The rows that make up ``period``: its whole months' rollups, and day rollups for the
    days of the week's month inside it."""
    in_period = (pl.col("day") >= period.start) & (pl.col("day") < period.end)
    return energy.filter(in_period)

"""Energy intensity per firm: kWh and tce per 10k yuan of output value and of value added,
and per mu of land, over one or more whole months.

Energy comes from the month rows of `firm_rollups`; output value and value added (yuan)
from `output_figures`. Standard coal (tce) sums every utility with its GB/T 2589 factor:
electricity at the calorific equivalent (当量值, default 0.1229 kgce/kWh) or, on request,
the equal-value coal rate (等价值, default 0.3), natural gas 1.2143 kgce/m3 and fresh water
0.2571 kgce/t, all configurable (``MHUB_KGCE_*``). A ratio whose denominator is missing,
zero or negative is null. Firms appear when they have energy or figures for the period.
"""

from __future__ import annotations

import enum
from datetime import datetime

import asyncpg
import polars as pl

from alerts import calendar
from alerts.calendar import Granularity
from alerts.energy import Factors
from alerts.trends.paging import FIRM_SCHEMA, Order, Page, firm_label_columns, paginate
from alerts.trends.queries import Sql, fetch_frame, firm_conditions
from alerts.trends.scope import Target


class IntensitySort(enum.StrEnum):
    KWH_PER_10K_OUTPUT = "kwh_per_10k_output"
    TCE_PER_10K_OUTPUT = "tce_per_10k_output"
    KWH_PER_10K_VALUE_ADDED = "kwh_per_10k_value_added"
    TCE_PER_10K_VALUE_ADDED = "tce_per_10k_value_added"
    KWH_PER_MU = "kwh_per_mu"
    TCE_PER_MU = "tce_per_mu"
    ELECTRICITY_KWH = "electricity_kwh"
    TCE = "tce"


LABELS = {
    **firm_label_columns(),
    "land_mu": "用地面积(亩)",
    "electricity_kwh": "用电量(kWh)",
    "gas_m3": "用气量(m3)",
    "water_t": "用水量(t)",
    "tce": "综合能耗(tce)",
    "output_value": "产值(元)",
    "value_added": "增加值(元)",
    "figure_months": "经济数据月数",
    "kwh_per_10k_output": "万元产值电耗(kWh)",
    "tce_per_10k_output": "万元产值能耗(tce)",
    "kwh_per_10k_value_added": "万元增加值电耗(kWh)",
    "tce_per_10k_value_added": "万元增加值能耗(tce)",
    "kwh_per_mu": "亩均电耗(kWh)",
    "tce_per_mu": "亩均能耗(tce)",
}

_SCHEMA = pl.Schema(
    {
        **FIRM_SCHEMA,
        "land_mu": pl.Float64(),
        "electricity_kwh": pl.Float64(),
        "gas_m3": pl.Float64(),
        "water_t": pl.Float64(),
        "kwh_matched": pl.Float64(),
        "gas_matched": pl.Float64(),
        "water_matched": pl.Float64(),
        "output_value": pl.Float64(),
        "value_added": pl.Float64(),
        "figure_months": pl.Int64(),
    }
)

# Ratios divide energy by output over the same months: ``*_matched`` sum energy only over
# the months that have output figures (a firm that misses a report must not look twice as
# intensive); the plain totals sum every month of the period.
_SELECT = """
WITH e AS (
    SELECT firm_id, (bucket AT TIME ZONE 'Asia/Shanghai')::date AS month,
           sum(energy) FILTER (WHERE utility = 'electricity') AS electricity_kwh,
           sum(energy) FILTER (WHERE utility = 'gas') AS gas_m3,
           sum(energy) FILTER (WHERE utility = 'water') AS water_t
    FROM firm_rollups WHERE granularity = 'month' AND bucket >= $1 AND bucket < $2
    GROUP BY firm_id, bucket),
o AS (
    SELECT firm_id, month, output_value::float8, value_added::float8
    FROM output_figures WHERE month >= $3 AND month < $4),
t AS (
    SELECT coalesce(e.firm_id, o.firm_id) AS firm_id,
           sum(e.electricity_kwh) AS electricity_kwh, sum(e.gas_m3) AS gas_m3,
           sum(e.water_t) AS water_t,
           sum(e.electricity_kwh) FILTER (WHERE o.firm_id IS NOT NULL) AS kwh_matched,
           sum(e.gas_m3) FILTER (WHERE o.firm_id IS NOT NULL) AS gas_matched,
           sum(e.water_t) FILTER (WHERE o.firm_id IS NOT NULL) AS water_matched,
           sum(o.output_value) AS output_value, sum(o.value_added) AS value_added,
           count(o.firm_id) AS figure_months
    FROM e FULL JOIN o ON o.firm_id = e.firm_id
                      AND o.month = e.month
    GROUP BY 1)
SELECT f.id, f.credit_code, f.name, f.town, f.industry, f.land_mu::float8,
       t.electricity_kwh, t.gas_m3, t.water_t, t.kwh_matched, t.gas_matched,
       t.water_matched, t.output_value, t.value_added, t.figure_months
FROM firms f JOIN t ON t.firm_id = f.id
WHERE true
"""


def _per(numerator: str, denominator: str, scale: float = 1.0) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(
        (pl.col(numerator) / (pl.col(denominator) / scale)).round(6)
    )


async def intensity(
    pool: asyncpg.Pool,
    target: Target,
    *,
    month: datetime,
    months: int,
    factors: Factors,
    sort: IntensitySort,
    order: Order = Order.DESC,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Intensities of ``target``'s firms over ``months`` months starting at ``month``."""
    end = calendar.step(month, Granularity.MONTH, months)
    sql = Sql([month, end, month.date(), end.date()])
    conditions = firm_conditions(target, sql, firm_id="f.id")
    text = _SELECT + "".join(f" AND {c}" for c in conditions)
    frame = await fetch_frame(pool, text, sql, _SCHEMA)

    def tce(kwh: str, gas: str, water: str) -> pl.Expr:
        kgce = (
            pl.col(kwh).fill_null(0) * factors.electricity
            + pl.col(gas).fill_null(0) * factors.gas
            + pl.col(water).fill_null(0) * factors.water
        )
        return pl.when(pl.any_horizontal(pl.col(kwh, gas, water).is_not_null())).then(kgce / 1000)

    frame = frame.with_columns(
        tce=tce("electricity_kwh", "gas_m3", "water_t"),
        tce_matched=tce("kwh_matched", "gas_matched", "water_matched"),
    ).with_columns(
        kwh_per_10k_output=_per("kwh_matched", "output_value", 10_000),
        tce_per_10k_output=_per("tce_matched", "output_value", 10_000),
        kwh_per_10k_value_added=_per("kwh_matched", "value_added", 10_000),
        tce_per_10k_value_added=_per("tce_matched", "value_added", 10_000),
        kwh_per_mu=_per("electricity_kwh", "land_mu"),
        tce_per_mu=_per("tce", "land_mu"),
        tce=pl.col("tce").round(6),
        electricity_kwh=pl.col("electricity_kwh").round(3),
        gas_m3=pl.col("gas_m3").round(3),
        water_t=pl.col("water_t").round(3),
    )
    frame = frame.drop("kwh_matched", "gas_matched", "water_matched", "tce_matched")
    return paginate(frame, sort=str(sort), order=order, limit=limit, offset=offset)

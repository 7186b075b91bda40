"""Carbon-efficiency code (碳效码, DB33/T 1347-2023) from a firm's year (`alerts.annual`).

* CO2 (t) = electricity kWh / 1000 × the grid factor (t CO2/MWh; the latest year of
  ``grid_emission_factors`` not after the evaluated one, for the configured region and
  kind) + gas m3 × kg CO2/m3 / 1000 (``MHUB_KG_CO2_PER_M3_GAS``, default 2.162:
  unconfirmed). Metered electricity and gas only: the firm's own generation is not
  deducted, other fuels are not seen.
* L = CO2 / value added (t per 10k yuan), over the same months.
* K = L / the sector's L, the sector being the first ``MHUB_CARBON_SECTOR_DEPTH``
  characters of the GB/T 4754 code (default 3: ``C29``); the sector's L is the ratio of
  its sums (Σ CO2 / Σ value added, default) or the mean of its firms' L (a switch).
* Grade 1..5 at K <= 0.6 / 0.8 / 1.2 / 2.0 / above; carbon level low (L <= 0.6), medium
  (<= 2.0), high (above).

A firm is graded only with value added > 0 and some CO2 (else there is no intensity).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from alerts.errors import AlertsError
from meterhub.db import Conn

#: Upper bounds of K for grades 1..4 (grade 5 above).
GRADE_CUTS = (0.6, 0.8, 1.2, 2.0)
#: Upper bounds of L (t CO2 per 10k yuan) for the low and medium levels.
LEVEL_CUTS = (("low", 0.6), ("medium", 2.0))
LEVEL_ABOVE = "high"
SECTOR_MEANS = ("ratio_of_sums", "mean_of_ratios")


class NoGridFactorError(AlertsError):
    """No grid emission factor for the region and kind up to the year."""

    code = "no_grid_factor"


@dataclass(frozen=True, slots=True)
class GridFactor:
    """One row of ``grid_emission_factors``: t CO2 per MWh."""

    year: int
    region: str
    kind: str
    tco2_per_mwh: float
    source: str


_FACTOR = """
SELECT year, region, kind, tco2_per_mwh, source FROM grid_emission_factors
WHERE region = $1 AND kind = $2 AND year <= $3 ORDER BY year DESC LIMIT 1
"""


async def grid_factor(conn: Conn, *, region: str, kind: str, year: int) -> GridFactor:
    """The factor for ``year``: the latest one published for a year not after it."""
    row = await conn.fetchrow(_FACTOR, region, kind, year)
    if row is None:
        raise NoGridFactorError(f"no {kind} grid CO2 factor for {region} in {year} or before")
    return GridFactor(**dict(row))


def _banded(value: pl.Expr, cuts: tuple[tuple[object, float], ...], above: object) -> pl.Expr:
    expr: pl.Expr = pl.lit(above)
    for label, bound in reversed(cuts):
        expr = pl.when(value <= bound).then(pl.lit(label)).otherwise(expr)
    return expr


def grade(
    year: pl.DataFrame,
    *,
    factor: GridFactor,
    kg_co2_per_m3_gas: float,
    depth: int = 3,
    sector_mean: str = "ratio_of_sums",
) -> pl.DataFrame:
    """One row per gradable firm: sector, co2_t, value_added_10k, l, sector_l, k, grade,
    level, months."""
    if sector_mean not in SECTOR_MEANS:
        raise ValueError(f"sector_mean must be one of {SECTOR_MEANS}")
    co2 = (
        pl.col("kwh").fill_null(0) / 1000 * factor.tco2_per_mwh
        + pl.col("gas_m3").fill_null(0) * kg_co2_per_m3_gas / 1000
    )
    firms = (
        year.with_columns(
            sector=pl.col("industry").str.slice(0, depth),
            co2_t=co2,
            value_added_10k=pl.col("value_added") / 10_000,
        )
        .filter((pl.col("value_added_10k") > 0) & (pl.col("co2_t") > 0))
        .with_columns(l=pl.col("co2_t") / pl.col("value_added_10k"))
    )
    if sector_mean == "ratio_of_sums":
        mean = pl.col("co2_t").sum() / pl.col("value_added_10k").sum()
    else:
        mean = pl.col("l").mean()
    with_k = firms.with_columns(sector_l=mean.over("sector")).with_columns(
        k=pl.col("l") / pl.col("sector_l")
    )
    grades = tuple((n, bound) for n, bound in enumerate(GRADE_CUTS, start=1))
    return with_k.select(
        "firm_id",
        "sector",
        "co2_t",
        "value_added_10k",
        "l",
        "sector_l",
        "k",
        grade=_banded(pl.col("k"), grades, len(GRADE_CUTS) + 1).cast(pl.Int64),
        level=_banded(pl.col("l"), LEVEL_CUTS, LEVEL_ABOVE),
        months=pl.col("months"),
    ).sort("firm_id")

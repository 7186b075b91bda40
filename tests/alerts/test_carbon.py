"""Carbon-efficiency grades (碳效码): a sector worked by hand, the sector-mean switch, the
grade and level bands, and the stored grade with the factor row it used."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import polars as pl
import pytest

from alerts import carbon
from alerts.annual import Period
from alerts.yearly import run_year
from meterhub.settings import Settings
from tests.alerts.evaluation_seed import even, seed_firm, year

# The 2022 Zhejiang average factor as seeded (0.5153 t CO2/MWh), gas at 2.162 kg CO2/m3.
FACTOR = carbon.GridFactor(2022, "zhejiang", "average", 0.5153, "seed")
GAS = 2.162

# Two firms of sector C29 and one of C17:
X = {"industry": "C2921", "kwh": 1_000_000.0, "gas_m3": 50_000.0, "value_added": 5_000_000.0}
Y = {"industry": "C2925", "kwh": 2_000_000.0, "value_added": 20_000_000.0}
Z = {"industry": "C1711", "kwh": 300_000.0, "value_added": 1_000_000.0}
# X  CO2 = 1000 MWh x 0.5153 + 50000 m3 x 2.162 / 1000 = 515.3 + 108.1 = 623.4 t
#    L = 623.4 / 500 (10k yuan) = 1.2468 -> medium (0.6 < L <= 2.0)
# Y  CO2 = 2000 x 0.5153 = 1030.6 t; L = 1030.6 / 2000 = 0.5153 -> low (<= 0.6)
# C29 L (ratio of sums) = (623.4 + 1030.6) / (500 + 2000) = 1654 / 2500 = 0.6616
#    K(X) = 1.2468 / 0.6616 = 1.884522 -> grade 4 (1.2 < K <= 2.0)
#    K(Y) = 0.5153 / 0.6616 = 0.778869 -> grade 2 (0.6 < K <= 0.8)
# C29 L (mean of ratios) = (1.2468 + 0.5153) / 2 = 0.88105
#    K(X) = 1.415130 -> grade 4;  K(Y) = 0.584870 -> grade 1 (<= 0.6)
# Z  alone in C17: K = 1 -> grade 3; L = 300 x 0.5153 / 100 = 1.5459 -> medium


def graded(sector_mean: str = "ratio_of_sums") -> pl.DataFrame:
    frame = year(X, Y, Z, {"kwh": 1000.0, "value_added": -5.0}, {"value_added": 1e6})
    return carbon.grade(frame, factor=FACTOR, kg_co2_per_m3_gas=GAS, sector_mean=sector_mean)


def test_a_sector_worked_by_hand() -> None:
    frame = graded()
    # No value added (firm 4) or no CO2 (firm 5): not graded.
    assert frame["firm_id"].to_list() == [1, 2, 3]
    x, y, z = frame.rows(named=True)
    assert x["co2_t"] == pytest.approx(623.4)
    assert (x["l"], x["sector_l"]) == pytest.approx((1.2468, 0.6616))
    assert x["k"] == pytest.approx(1.884522, abs=1e-6)
    assert (x["grade"], x["level"], x["sector"]) == (4, "medium", "C29")
    assert y["k"] == pytest.approx(0.778869, abs=1e-6)
    assert (y["grade"], y["level"]) == (2, "low")
    assert (z["k"], z["grade"], z["level"]) == (pytest.approx(1.0), 3, "medium")


def test_the_mean_of_ratios_switch() -> None:
    x, y, _ = graded("mean_of_ratios").rows(named=True)
    assert x["sector_l"] == pytest.approx(0.88105)
    assert (x["k"], x["grade"]) == (pytest.approx(1.415130, abs=1e-6), 4)
    assert (y["k"], y["grade"]) == (pytest.approx(0.584870, abs=1e-6), 1)


@pytest.mark.parametrize(
    ("intensity", "grade", "level"),
    [
        (0.59, 1, "low"),
        (0.61, 2, "medium"),
        (0.79, 2, "medium"),
        (0.81, 3, "medium"),
        (1.19, 3, "medium"),
        (1.21, 4, "medium"),
        (1.99, 4, "medium"),
        (2.01, 5, "high"),
    ],
)
def test_grade_and_level_bands(intensity: float, grade: int, level: str) -> None:
    # A peer 10^8 times larger at L = 1 makes the sector's L 1 (to 1e-8): K = L.
    def at(l_: float, value_added: float) -> dict[str, object]:
        kwh = value_added / 10_000 * l_ * 1000 / FACTOR.tco2_per_mwh
        return {"industry": "C3011", "kwh": kwh, "value_added": value_added}

    frame = carbon.grade(
        year(at(intensity, 1e4), at(1.0, 1e12)), factor=FACTOR, kg_co2_per_m3_gas=GAS
    )
    firm = frame.row(0, named=True)
    assert firm["l"] == pytest.approx(intensity)
    assert firm["k"] == pytest.approx(intensity, rel=1e-6)
    assert (firm["grade"], firm["level"]) == (grade, level)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.mark.integration
async def test_stored_grades_record_the_factor_row(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings
) -> None:
    evaluated = 2045  # no factor after 2022 is seeded: the 2022 Zhejiang row is used
    firms = []
    for plan in (X, Y):
        totals = {k: float(v) for k, v in plan.items() if isinstance(v, float)}
        firm, _ = await seed_firm(
            db, year=evaluated, monthly=even(totals), industry=str(plan["industry"])
        )
        firms.append(firm)
    summary = await run_year(pool, period=Period(evaluated), settings=settings)
    assert summary.factor.year == 2022 and summary.factor.tco2_per_mwh == 0.5153
    assert summary.grades == {2: 1, 4: 1}
    rows = await db.fetch("SELECT * FROM carbon_grades WHERE year = $1 ORDER BY firm_id", evaluated)
    assert [r["firm_id"] for r in rows] == firms
    x = rows[0]
    assert (x["factor"], x["factor_year"], x["factor_region"], x["factor_kind"]) == (
        0.5153,
        2022,
        "zhejiang",
        "average",
    )
    assert x["gas_kg_co2_per_m3"] == GAS and x["months"] == 12
    assert (x["l"], x["k"], x["grade"], x["level"]) == (
        pytest.approx(1.2468),
        pytest.approx(1.884522, abs=1e-6),
        4,
        "medium",
    )
    await run_year(pool, period=Period(evaluated), settings=settings)  # replaced, not doubled
    assert await db.fetchval("SELECT count(*) FROM carbon_grades WHERE year = $1", evaluated) == 2


@pytest.mark.integration
async def test_no_factor_for_the_year_is_an_error(db: asyncpg.Connection) -> None:
    with pytest.raises(carbon.NoGridFactorError):
        await carbon.grid_factor(db, region="zhejiang", kind="average", year=2020)
    factor = await carbon.grid_factor(db, region="zhejiang", kind="average", year=2021)
    assert (factor.year, factor.tco2_per_mwh) == (2021, 0.5422)

"""The year's evaluation against the database: the hand-computed firms of the pure tests
seeded month by month, the same months of energy as of figures, year to date, idempotent
re-runs, and official classes beside computed ones. Each test evaluates a year of its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from alerts.annual import Period
from alerts.errors import UnknownSchemeError
from alerts.inputs import _CLASSES as CLASS_HISTORY
from alerts.official import OFFICIAL_COLUMNS, import_official
from alerts.yearly import load_scheme, run_year
from meterhub.settings import Settings
from registry.sheets import read_sheet
from tests.alerts.evaluation_seed import even, seed_firm
from tests.alerts.test_evaluation import (
    HAND_ABOVE,
    HAND_ABOVE_SCORE,
    HAND_BELOW,
    HAND_BELOW_SCORE,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


def hand_above_month(m: int) -> dict[str, float | None]:
    """HAND_ABOVE split over twelve months: equal twelfths of the flows, employees 190 and
    210 alternately (mean 200), emissions 0.25 t in January and February only, all the
    R&D spend in December."""
    return {
        "tax_paid": 301_212.5,
        "value_added": 3_404_000.0,
        "kwh": 500_000.0,
        "gas_m3": 10_000.0,
        "employees": 190.0 if m % 2 else 210.0,
        "emissions_t": 0.25 if m <= 2 else None,
        "rnd_spend": 1_449_600.0 if m == 12 else None,
        "main_revenue": 8_000_000.0,
    }


def below_totals() -> dict[str, float | None]:
    return {k: v for k, v in HAND_BELOW.items() if k in ("tax_paid", "kwh")}


async def stored(db: asyncpg.Connection, firm: int, year: int) -> dict[str, object]:
    row = await db.fetchrow(
        "SELECT * FROM evaluations WHERE firm_id = $1 AND year = $2 AND source = 'computed'",
        firm,
        year,
    )
    assert row is not None
    return dict(row) | {"indicators": json.loads(row["indicators"])}


async def test_hand_computed_firms_and_an_idempotent_rerun(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings
) -> None:
    year = 2041
    for key in ("tax_paid", "value_added", "kwh", "gas_m3", "emissions_t", "rnd_spend"):
        total = sum(hand_above_month(m)[key] or 0.0 for m in range(1, 13))
        assert total == pytest.approx(HAND_ABOVE[key])  # the split adds up to the worked year
    above, _ = await seed_firm(db, year=year, monthly=hand_above_month, town="佛堂")
    below, _ = await seed_firm(
        db, year=year, monthly=even(below_totals()), above_scale=False, land_mu=5.0, town="苏溪"
    )
    landless, _ = await seed_firm(db, year=year, monthly=even(below_totals()), land_mu=None)
    summary = await run_year(pool, period=Period(year), settings=settings)
    assert summary.scheme == "huangyan-2022"  # the newest scheme not after 2041

    a = await stored(db, above, year)
    assert a["cohort"] == "above_scale"
    assert a["score"] == pytest.approx(HAND_ABOVE_SCORE, abs=1e-6)
    items = a["indicators"]["items"]  # type: ignore[index]
    assert items["va_per_tce"]["value"] == pytest.approx(2.0993814, rel=1e-7)
    assert items["va_per_t_emissions"]["basis"] == "value"
    assert items["tax_per_mu"]["benchmark"] == 24.097 and items["tax_per_mu"]["weight"] == 30
    # One firm is its whole cohort: rank 1 of 1, a share of 1 > 0.95, so class D.
    assert (a["rank"], a["cohort_size"], a["class"]) == (1, 1, "D")
    b = await stored(db, below, year)
    assert b["cohort"] == "below_scale_3mu"
    assert b["score"] == pytest.approx(HAND_BELOW_SCORE, abs=1e-6)
    n = await stored(db, landless, year)
    assert (n["cohort"], n["class"], n["score"]) == ("not_rated", None, None)
    assert n["indicators"]["reason"] == "no_land"  # type: ignore[index]

    before = await db.fetch(
        "SELECT firm_id, cohort, score, class, rank FROM evaluations WHERE year = $1 "
        "ORDER BY firm_id",
        year,
    )
    again = await run_year(pool, period=Period(year), settings=settings)
    after = await db.fetch(
        "SELECT firm_id, cohort, score, class, rank FROM evaluations WHERE year = $1 "
        "ORDER BY firm_id",
        year,
    )
    assert [dict(r) for r in after] == [dict(r) for r in before]
    assert again.classes == summary.classes and again.firms == summary.firms


async def test_energy_and_figures_cover_the_same_months(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings
) -> None:
    year = 2042
    firm, _ = await seed_firm(
        db, year=year, monthly=even(below_totals()), above_scale=False, land_mu=5.0
    )
    # October's figures are missing, its energy is not: neither may count.
    await db.execute(
        "DELETE FROM output_figures WHERE firm_id = $1 AND month = make_date($2, 10, 1)",
        firm,
        year,
    )
    await run_year(pool, period=Period(year), settings=settings)
    row = await stored(db, firm, year)
    values = row["indicators"]["values"]  # type: ignore[index]
    assert row["indicators"]["months"] == 11  # type: ignore[index]
    assert values["tax_per_kwh"] == pytest.approx(0.3)  # 11 x 50 000 / (11 x 2e6 / 12)
    assert values["tax_per_mu"] == pytest.approx(12.0)  # annualised: 550 000 x 12 / 11
    assert row["score"] == pytest.approx(HAND_BELOW_SCORE, abs=1e-6)

    # Year to date (January to June) stores the months it covers.
    await run_year(pool, period=Period(year, 6), settings=settings)
    ytd = await stored(db, firm, year)
    assert ytd["through_month"] == 6 and ytd["indicators"]["months"] == 6  # type: ignore[index]
    assert ytd["score"] == pytest.approx(HAND_BELOW_SCORE, abs=1e-6)


async def test_official_classes_beside_computed_ones(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings
) -> None:
    year = 2043
    firm, code = await seed_firm(db, year=year, monthly=hand_above_month)
    other, other_code = await seed_firm(db, year=2049, monthly=hand_above_month, months=1)
    await run_year(pool, period=Period(year), settings=settings)

    def sheet(text: str) -> object:
        fields = set(OFFICIAL_COLUMNS.values())
        return read_sheet(text.encode(), "text/csv", aliases=OFFICIAL_COLUMNS, fields=fields)

    bad = sheet(f"统一社会信用代码,年度,评价类别\n{code},{year},E\n{other_code},{year},B\n")
    report = await import_official(db, sheet=bad, principal=None)  # type: ignore[arg-type]
    assert not report.written and [e["row"] for e in report.errors] == [2]
    good = sheet(
        f"统一社会信用代码,年度,评价类别,综合得分\n{code},{year},B类,88.5\n"
        f"{other_code},{year - 1},D,\n{other_code},{year - 2},D,\n"
    )
    report = await import_official(db, sheet=good, principal=None)  # type: ignore[arg-type]
    assert (report.written, report.created, report.updated) == (True, 3, 0)
    report = await import_official(db, sheet=good, principal=None)  # type: ignore[arg-type]
    assert (report.created, report.updated) == (0, 3)

    rows = await db.fetch(
        "SELECT source, cohort, class, score FROM evaluations WHERE firm_id = $1 AND year = $2 "
        "ORDER BY source",
        firm,
        year,
    )
    assert [r["source"] for r in rows] == ["computed", "official"]
    assert (rows[1]["cohort"], rows[1]["class"], rows[1]["score"]) == ("above_scale", "B", 88.5)
    # A re-run replaces computed rows only; the class history prefers the official class.
    await run_year(pool, period=Period(year), settings=settings)
    history = await db.fetch(CLASS_HISTORY, year - 2)
    classes = {(r["firm_id"], r["year"]): r["class"] for r in history}
    assert classes[(firm, year)] == "B"
    assert classes[(other, year - 1)] == classes[(other, year - 2)] == "D"


async def test_an_unknown_scheme_is_refused(db: asyncpg.Connection) -> None:
    with pytest.raises(UnknownSchemeError):
        await load_scheme(db, year=2025, scheme_id="nowhere-2025")
    with pytest.raises(UnknownSchemeError):
        await load_scheme(db, year=2019)
    scheme = await load_scheme(db, year=2021)
    assert scheme.id == "huangyan-2021" and len(scheme.of("above_scale")) == 6

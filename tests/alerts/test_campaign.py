"""Campaign progress on a seeded city whose every figure is worked out by hand below.

Week 2031-12-01: "now" is 2030-12..2031-11, the 12 months before it 2029-12..2030-11.
Electricity 0.1229 kgce/kWh (当量值); grid factor zhejiang/average of 2022, 0.5153 t/MWh.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest

from alerts.campaign import progress
from alerts.errors import InvalidPeriodError
from meterhub.settings import Settings
from tests.alerts.campaign_seed import WEEK, case, config, figures, firm, metered

pytestmark = pytest.mark.integration

YITING, DACHEN = "义亭", "大陈"


@pytest.fixture
async def tx(db: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """``db`` inside a transaction rolled back at the end: each test sees its own city."""
    transaction = db.transaction()
    await transaction.start()
    try:
        yield db
    finally:
        await transaction.rollback()


async def seed(db: asyncpg.Connection) -> dict[str, int]:
    f: dict[str, int] = {}
    # R1: rectified. Baseline (the 12 months before 2030-06) 12 x 10,000 = 120,000 kWh;
    # now 12 x 6,000 = 72,000 kWh: 48,000 kWh freed.
    f["r1"] = await firm(db, "整改甲", town=YITING, land_mu=20)
    await case(db, f["r1"], "high_energy", opened=date(2030, 6, 3), resolved=date(2031, 3, 3))
    await metered(db, f["r1"], date(2029, 6, 1), 18, 10_000)
    await metered(db, f["r1"], date(2030, 12, 1), 12, 6_000)
    await figures(
        db, f["r1"], date(2029, 12, 1), 12, output=1_000_000, value_added=150_000, tax=40_000
    )
    await figures(
        db, f["r1"], date(2030, 12, 1), 12, output=1_000_000, value_added=200_000, tax=50_000
    )
    # R2: rectified but uses more. Baseline (2029-09..2030-08) 12 x 5,000 = 60,000; now
    # 12 x 5,500 = 66,000: -6,000 kWh.
    f["r2"] = await firm(db, "整改乙", town=DACHEN, land_mu=15)
    await case(db, f["r2"], "d_two_years", opened=date(2030, 9, 2), resolved=date(2031, 6, 2))
    await metered(db, f["r2"], date(2029, 9, 1), 15, 5_000)
    await metered(db, f["r2"], date(2030, 12, 1), 12, 5_500)
    await figures(
        db, f["r2"], date(2029, 12, 1), 12, output=500_000, value_added=100_000, tax=20_000
    )
    await figures(
        db, f["r2"], date(2030, 12, 1), 12, output=500_000, value_added=150_000, tax=25_000
    )
    # C1: closed down (another case still open does not matter). Baseline (2029-08..2030-07)
    # 12 x 20,000 = 240,000; now 5 x 1,000 (2030-12..2031-04), 2031-05's 3,000 is under the
    # completeness threshold and the months after are missing: 0 for a closed firm. 235,000.
    f["c1"] = await firm(db, "关停丙", town=YITING, land_mu=30, above=False)
    await case(
        db,
        f["c1"],
        "unrectified_d",
        opened=date(2030, 8, 5),
        resolved=date(2031, 5, 5),
        basis="closed_down",
    )
    await case(db, f["c1"], "high_energy", opened=date(2031, 1, 6))
    await metered(db, f["c1"], date(2029, 8, 1), 16, 20_000)
    await metered(db, f["c1"], date(2030, 12, 1), 5, 1_000)
    await metered(db, f["c1"], date(2031, 5, 1), 1, 3_000, complete=False)
    # W1: one case resolved, a two-high case still open: waits, not counted.
    f["w1"] = await firm(db, "待办丁", town=YITING, land_mu=8)
    await case(db, f["w1"], "high_energy", opened=date(2030, 9, 2), resolved=date(2031, 4, 7))
    await case(db, f["w1"], "two_high", opened=date(2031, 2, 3))
    # N1: an energy anomaly is no rectification; O1: resolved before the count starts.
    f["n1"] = await firm(db, "异常戊", town=YITING, land_mu=5)
    await case(db, f["n1"], "energy_anomaly", opened=date(2031, 1, 6), resolved=date(2031, 2, 3))
    f["o1"] = await firm(db, "旧案己", town=DACHEN, land_mu=6)
    await case(db, f["o1"], "high_energy", opened=date(2030, 3, 4), resolved=date(2030, 12, 30))
    # L1: land case resolved (40 mu; also rectified, but no metered baseline: excluded).
    f["l1"] = await firm(db, "低效地庚", town=DACHEN, land_mu=40, above=False)
    await case(db, f["l1"], "land_reclaim", opened=date(2031, 1, 6), resolved=date(2031, 7, 7))
    # L2: left the land list in 2031 (12.5 mu); its figures cover only 6 months.
    f["l2"] = await firm(db, "腾地辛", town=YITING, land_mu=12.5)
    await db.execute(
        "INSERT INTO firm_lists (firm_id, list, since, until) "
        "VALUES ($1, 'land_reclaim', '2029-01-01', '2031-10-01')",
        f["l2"],
    )
    await figures(db, f["l2"], date(2031, 6, 1), 6, output=100_000, value_added=10_000, tax=1_000)
    # L3: left the list and came back: not counted.
    f["l3"] = await firm(db, "复列壬", town=YITING, land_mu=9)
    await db.execute(
        "INSERT INTO firm_lists (firm_id, list, since, until) VALUES "
        "($1, 'land_reclaim', '2029-01-01', '2031-02-01'), "
        "($1, 'land_reclaim', '2031-05-01', NULL)",
        f["l3"],
    )
    return f


def town_of(result: dict[str, Any], town: str) -> dict[str, Any]:
    figures: dict[str, Any] = next(t for t in result["towns"] if t["town"] == town)["figures"]
    return figures


async def test_progress_by_town_and_city(tx: asyncpg.Connection, settings: Settings) -> None:
    f = await seed(tx)
    result = await progress(tx, week=WEEK, settings=settings, config=config())
    city, yiting, dachen = result["city"], town_of(result, YITING), town_of(result, DACHEN)
    towns = await tx.fetchval("SELECT count(*) FROM towns")  # 14 seeded, and tests' own
    assert result["as_of"] == "2031-12-07" and len(result["towns"]) == towns >= 14

    assert (city["eliminated"]["measured"], city["eliminated"]["firm_ids"]) == (1, [f["c1"]])
    assert city["eliminated"]["share_of_target"] == pytest.approx(1 / 45, abs=1e-6)
    assert sorted(city["rectified"]["firm_ids"]) == sorted([f["r1"], f["r2"], f["l1"]])
    assert city["rectified"]["measured"] == 3 and city["rectified"]["target"] == 300
    assert type(city["rectified"]["measured"]) is int  # a count stays a count
    assert city["rectified"]["waiting_for_open_cases"] == [f["w1"]]
    assert (yiting["rectified"]["measured"], dachen["rectified"]["measured"]) == (1, 2)
    assert city["rectified"]["as_of"] == "2031-12-07"

    # Land: L1 40 (case) + L2 12.5 (list) = 52.5 mu.
    land = city["land_rectified"]
    assert land["measured"] == 52.5 and (land["by_case"], land["by_list"]) == (1, 1)
    assert land["share_of_target"] == pytest.approx(52.5 / 9000, abs=1e-6)
    assert (yiting["land_rectified"]["measured"], dachen["land_rectified"]["measured"]) == (
        12.5,
        40,
    )

    # Energy: 48,000 - 6,000 + 235,000 = 277,000 kWh x 0.1229 kgce/kWh = 34.0433 tce.
    energy = city["energy_freed"]
    assert energy["measured"] == pytest.approx(34.0433)
    assert energy["as_of"] == "2031-11-30"
    assert energy["firms_using_more"] == [f["r2"]]
    assert [e["firm_id"] for e in energy["excluded"]] == [f["l1"]]
    assert yiting["energy_freed"]["measured"] == pytest.approx(283_000 * 0.1229 / 1000)
    assert dachen["energy_freed"]["measured"] == pytest.approx(-6_000 * 0.1229 / 1000)
    by_firm = {r["firm_id"]: r for r in energy["firms"]}
    assert by_firm[f["c1"]]["current_kwh"] == 5_000
    assert by_firm[f["c1"]]["baseline"] == {"start": "2029-08-01", "end": "2030-08-01"}

    # CO2: 277 MWh x 0.5153 t/MWh = 142.7381 t.
    co2 = city["co2_cut"]
    assert co2["measured"] == pytest.approx(142.7381)
    assert (co2["factor"]["year"], co2["factor"]["tco2_per_mwh"]) == (2022, 0.5153)

    # Per mu (R1 and R2; L2 reports 6 months only): tax (60 + 30) / 35 mu, value added
    # (240 + 180) / 35 = 12 (10k yuan); a year earlier tax (48 + 24) / 35.
    tax = city["tax_per_mu"]
    assert tax["measured"] == pytest.approx(90 / 35, abs=1e-6)
    assert tax["previous_12_months"] == pytest.approx(72 / 35, abs=1e-6)
    assert tax["share_of_target"] == pytest.approx(90 / 35 / 25, abs=1e-6)
    assert (yiting["tax_per_mu"]["measured"], yiting["tax_per_mu"]["incomplete_firms"]) == (3, 1)
    assert city["value_added_per_mu"]["measured"] == pytest.approx(12)
    assert city["value_added_per_mu"]["previous_12_months"] == pytest.approx(300 / 35, abs=1e-6)

    # Intensity: 138,000 kWh over 1,800 (10k yuan) now, 180,000 over 1,800 before: -23.33 %
    # (C1 reports no output: not in it); 义亭 72,000/1,200 vs 120,000/1,200: -40 %.
    change = city["intensity_change"]
    assert change["measured"] == pytest.approx(-100 / 3 * 0.7, abs=1e-6)
    assert change["share_of_target"] == pytest.approx((100 / 3 * 0.7) / 3.4, abs=1e-6)
    assert change["current"]["firm_months"] == 24
    assert yiting["intensity_change"]["measured"] == pytest.approx(-40)
    assert dachen["intensity_change"]["measured"] == pytest.approx(10)
    assert town_of(result, "稠城")["intensity_change"]["measured"] is None
    assert town_of(result, "稠城")["rectified"]["measured"] == 0


async def test_a_town_sees_its_own_figures_only(tx: asyncpg.Connection, settings: Settings) -> None:
    await seed(tx)
    whole = await progress(tx, week=WEEK, settings=settings, config=config())
    mine = await progress(tx, week=WEEK, town=DACHEN, settings=settings, config=config())
    assert mine["city"] is None and [t["town"] for t in mine["towns"]] == [DACHEN]
    assert [t["code"] for t in mine["targets"]] == [t["code"] for t in whole["targets"]]
    assert (
        town_of(mine, DACHEN)["rectified"]["firm_ids"]
        == town_of(whole, DACHEN)["rectified"]["firm_ids"]
    )
    assert town_of(mine, DACHEN)["energy_freed"]["firms"][0]["town"] == DACHEN


async def test_the_week_must_be_a_monday(db: asyncpg.Connection, settings: Settings) -> None:
    with pytest.raises(InvalidPeriodError):
        await progress(db, week=date(2031, 12, 2), settings=settings, config=config())

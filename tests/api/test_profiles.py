"""GET /v1/firms/{id}/profile against figures recomputed from the seeded city."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from tests.alerts.city import WEEK, FirmPlan, monthly_kwh, months, output_value, seed_and_judge
from tests.api.conftest import OTHER_TOWN, TOWN, Keys

pytestmark = pytest.mark.integration

PLANS = [
    *(FirmPlan(f"peer{i}", industry="C2319") for i in range(5)),
    FirmPlan("excess", industry="C2319", kwh_factor=lambda m: 1.3 if m == 0 else 1.0),
]


@pytest.fixture(scope="module")
async def city(settings: Settings) -> dict[str, int]:
    return await seed_and_judge(settings, {TOWN: PLANS})


async def test_profile_accounts_energy_and_shows_the_baseline_and_findings(
    http: httpx.AsyncClient, keys: Keys, city: dict[str, int], db: asyncpg.Connection
) -> None:
    firm = city["excess"]
    response = await http.get(
        f"/v1/firms/{firm}/profile", params={"week": str(WEEK)}, headers=keys.headers("town")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    energy = {p["period"]: p for p in body["energy"]}
    week_kwh = await db.fetchval(
        "SELECT sum(energy) FROM firm_day_features WHERE firm_id = $1 AND day >= $2 AND day < $3",
        firm,
        WEEK,
        WEEK + timedelta(days=7),
    )
    assert energy["week"]["electricity_kwh"] == pytest.approx(week_kwh)
    assert energy["week"]["output_basis"] == "missing"  # November not reported yet
    assert energy["week"]["kwh_per_10k_output"] is None
    # Rolling 12 months: November 2025 .. October 2026, energy and output the same months.
    plan = PLANS[-1]
    twelve = months(date(2025, 11, 1), date(2026, 10, 1))
    kwh = sum(monthly_kwh(plan, m) for m in twelve)
    output = sum(output_value(plan.seed, m) for m in twelve)
    rolling = energy["rolling_12_months"]
    assert rolling["output_basis"] == "reported"
    assert rolling["electricity_kwh"] == pytest.approx(kwh)
    assert rolling["output_value"] == pytest.approx(output)
    assert rolling["kwh_per_10k_output"] == pytest.approx(kwh / (output / 10_000), rel=1e-6)
    assert rolling["tce_calorific"] == pytest.approx(kwh * 0.1229 / 1000, rel=1e-6)
    assert rolling["tce_equal_value"] == pytest.approx(kwh * 0.3 / 1000, rel=1e-6)
    # The latest Zhejiang grid factor at or before 2026 is 2022's 0.5153 t/MWh.
    assert rolling["co2_factor_year"] == 2022
    assert rolling["co2_t"] == pytest.approx(kwh / 1000 * 0.5153, rel=1e-6)
    # January .. October reported, November not: partial, so no ratio.
    assert energy["year_to_date"]["output_basis"] == "partial"
    assert energy["year_to_date"]["kwh_per_10k_output"] is None
    assert body["baseline"]["valid"] is True and body["baseline"]["r2"] >= 0.5
    assert body["intensity"]["sector"] == "C23" and body["intensity"]["peers"] == 6
    assert {f["rule"] for f in body["open_findings"]} == {"baseline_excess"}


async def test_a_town_cannot_read_another_towns_profile(
    http: httpx.AsyncClient, keys: Keys, city: dict[str, int]
) -> None:
    response = await http.get(
        f"/v1/firms/{city['peer0']}/profile", headers=keys.headers("other_town")
    )
    assert response.status_code == 403
    assert OTHER_TOWN in response.json()["detail"]


async def test_the_week_must_be_a_monday(
    http: httpx.AsyncClient, keys: Keys, city: dict[str, int]
) -> None:
    response = await http.get(
        f"/v1/firms/{city['peer0']}/profile",
        params={"week": str(WEEK + timedelta(days=1))},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 422

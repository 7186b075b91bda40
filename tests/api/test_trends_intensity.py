"""Energy intensity per firm against hand-computed ratios."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from api.trends.schemas import IntensityOut
from tests.api.conftest import OTHER_TOWN, Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, seed, unique_town

pytestmark = pytest.mark.integration


async def figures(
    db: asyncpg.Connection, firm: int, month: date, output: float, value_added: float
) -> None:
    await db.execute(
        "INSERT INTO output_figures (firm_id, month, output_value, value_added) "
        "VALUES ($1, $2, $3, $4)",
        firm,
        month,
        output,
        value_added,
    )


@pytest.fixture
async def town(db: asyncpg.Connection) -> tuple[str, list[int]]:
    town = unique_town()
    f1 = await new_firm(db, town=town, land_mu=12.5)
    f2 = await new_firm(db, town=town, land_mu=None)
    f3 = await new_firm(db, town=town)
    f4 = await new_firm(db, town=town)
    # f1: 12,000 kWh in January (and 3,000 in February); output 3M yuan, value added 600k.
    await seed(
        db, await new_meter(db, f1), [(at(2033, 1, 10), 12_000.0), (at(2033, 2, 3), 3_000.0)]
    )
    await figures(db, f1, date(2033, 1, 1), 3_000_000, 600_000)
    await figures(db, f1, date(2033, 2, 1), 1_000_000, 200_000)
    # f2: 6,000 kWh, 2,000 m3 of gas, 400 t of water; output 1M, value added negative.
    await seed(db, await new_meter(db, f2), [(at(2033, 1, 10), 6_000.0)])
    await seed(db, await new_meter(db, f2, utility="gas"), [(at(2033, 1, 10), 2_000.0)])
    await seed(db, await new_meter(db, f2, utility="water"), [(at(2033, 1, 10), 400.0)])
    await figures(db, f2, date(2033, 1, 1), 1_000_000, -50_000)
    # f3: figures but no meter data; f4: 1,000 kWh but no figures.
    await figures(db, f3, date(2033, 1, 1), 500_000, 100_000)
    await seed(db, await new_meter(db, f4), [(at(2033, 1, 31, 23, 45), 1_000.0)])
    return town, [f1, f2, f3, f4]


async def intensity(http: httpx.AsyncClient, keys: Keys, **params: Any) -> dict[str, Any]:
    response = await http.get(
        "/v1/trends/intensity",
        params={"month": "2033-01", **params},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    IntensityOut.model_validate(body)
    return body


async def test_intensities_are_hand_computed(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, (f1, f2, f3, f4) = town
    body = await intensity(http, keys, town=name)
    assert body["kgce_per_unit"] == {"electricity": 0.1229, "gas": 1.2143, "water": 0.2571}
    assert body["total"] == 4
    rows = {r["firm_id"]: r for r in body["items"]}
    # Sorted by kWh per 10k yuan of output, largest first, nulls last by firm id.
    assert [r["firm_id"] for r in body["items"]] == [f2, f1, f3, f4]
    first = rows[f1]
    assert first["electricity_kwh"] == 12_000.0
    assert first["kwh_per_10k_output"] == 40.0  # 12,000 / 300
    assert first["tce"] == 1.4748  # 12,000 x 0.1229 / 1000
    assert first["tce_per_10k_output"] == 0.004916  # 1.4748 / 300
    assert first["kwh_per_10k_value_added"] == 200.0  # 12,000 / 60
    assert first["tce_per_10k_value_added"] == 0.02458
    assert first["kwh_per_mu"] == 960.0  # 12,000 / 12.5
    assert first["tce_per_mu"] == 0.117984
    second = rows[f2]
    # (6,000 x 0.1229 + 2,000 x 1.2143 + 400 x 0.2571) / 1000 = (737.4 + 2428.6 + 102.84) / 1000
    assert (second["gas_m3"], second["water_t"], second["tce"]) == (2_000.0, 400.0, 3.26884)
    assert (second["kwh_per_10k_output"], second["tce_per_10k_output"]) == (60.0, 0.032688)
    # Negative value added and unknown land give no ratio.
    assert second["kwh_per_10k_value_added"] is None
    assert second["tce_per_10k_value_added"] is None
    assert second["kwh_per_mu"] is None
    third = rows[f3]
    assert (third["electricity_kwh"], third["tce"], third["output_value"]) == (
        None,
        None,
        500_000.0,
    )
    assert third["kwh_per_10k_output"] is None
    fourth = rows[f4]
    assert (fourth["kwh_per_mu"], fourth["figure_months"], fourth["output_value"]) == (
        80.0,
        0,
        None,
    )


async def test_sorting_paging_basis_and_months(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, (f1, f2, f3, f4) = town
    body = await intensity(http, keys, town=name, sort="kwh_per_mu")
    assert [r["firm_id"] for r in body["items"]] == [f1, f4, f2, f3]
    body = await intensity(http, keys, town=name, sort="kwh_per_mu", order="asc", limit=1, offset=1)
    assert [r["firm_id"] for r in body["items"]] == [f1]
    assert (body["total"], body["limit"], body["offset"]) == (4, 1, 1)
    body = await intensity(http, keys, town=name, basis="equal_value", sort="tce")
    assert [(r["firm_id"], r["tce"]) for r in body["items"][:2]] == [
        (f2, 4.33144),  # (6,000 x 0.3 + 2,428.6 + 102.84) / 1000
        (f1, 3.6),  # 12,000 x 0.3 / 1000
    ]
    body = await intensity(http, keys, town=name, months=2)
    first = next(r for r in body["items"] if r["firm_id"] == f1)
    assert (first["electricity_kwh"], first["output_value"], first["figure_months"]) == (
        15_000.0,
        4_000_000.0,
        2,
    )
    assert first["kwh_per_10k_output"] == 37.5


async def test_town_scope_and_bad_month(
    http: httpx.AsyncClient, keys: Keys, town: tuple[str, list[int]]
) -> None:
    name, _ = town
    for params in ({"town": name}, {"town": OTHER_TOWN}):
        response = await http.get(
            "/v1/trends/intensity",
            params={"month": "2033-01", **params},
            headers=keys.headers("town"),
        )
        assert response.status_code == 403
    for month in ("2033-13", "2033-1", "January"):
        response = await http.get(
            "/v1/trends/intensity", params={"month": month}, headers=keys.headers("bureau")
        )
        assert response.status_code == 422, month


async def test_ratios_use_energy_of_the_months_that_have_figures(
    http: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    """A firm that misses one month's report must not look twice as intensive."""
    name = unique_town()
    firm = await new_firm(db, town=name, land_mu=10)
    meter = await new_meter(db, firm)
    await seed(db, meter, [(at(2033, 1, 10), 10_000.0), (at(2033, 2, 10), 10_000.0)])
    await figures(db, firm, date(2033, 1, 1), 1_000_000, 200_000)  # February not reported
    body = await intensity(http, keys, town=name, months=2)
    [row] = body["items"]
    assert row["electricity_kwh"] == 20_000.0  # the period's whole energy
    assert row["figure_months"] == 1
    assert row["kwh_per_10k_output"] == 100.0  # January's 10,000 kWh / 100 (10k yuan)
    assert row["kwh_per_mu"] == 2_000.0  # per mu uses the whole period

"""Bad input the fuzzers found: every case a clear problem+json 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Keys
from tests.api.test_registry import make_firm

pytestmark = pytest.mark.integration

HUGE = "10130387227139612912522027335680"


def _is_problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize(
    "url",
    [
        "/v1/firms?industry=%C3%AE%00x",
        "/v1/firms?town=%7FR%00p",
        "/v1/firms?q=a%00b",
        "/v1/terminals?town=%00",
        "/v1/trends/top?start=2026-03-01&end=2026-04-01&industry=C1%007",
    ],
)
async def test_a_nul_in_any_query_parameter_is_a_422(
    client: httpx.AsyncClient, keys: Keys, url: str
) -> None:
    body = _is_problem(await client.get(url, headers=keys.headers("bureau")))
    assert "NUL" in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        f"/v1/meters?offset={HUGE}",
        f"/v1/meters?firm_id={HUGE}",
        f"/v1/firms?offset={HUGE}",
        f"/v1/firms/{HUGE}",
        f"/v1/firms/{HUGE}/output-figures",
        f"/v1/meters/{HUGE}",
        f"/v1/terminals?firm_id={HUGE}",
        f"/v1/terminals?offset={HUGE}",
        f"/v1/findings?firm_id={HUGE}",
        f"/v1/trends/top?start=2026-03-01&end=2026-04-01&offset={HUGE}",
        f"/v1/trends/series?scope=firm&id={HUGE}&start=2026-03-01&end=2026-04-01",
        f"/v1/trends/series?scope=meter&id=-{HUGE}&start=2026-03-01&end=2026-04-01",
    ],
)
async def test_integers_beyond_64_bits_are_a_422(
    client: httpx.AsyncClient, keys: Keys, url: str
) -> None:
    _is_problem(await client.get(url, headers=keys.headers("bureau")))


@pytest.mark.parametrize(
    "url",
    [
        "/v1/trends/top?start=0953-12-01&end=2026-04-01",
        "/v1/trends/top?start=0001-01-01&end=0001-02-01",
        "/v1/trends/top?start=9999-11-01&end=9999-12-31",
        "/v1/trends/series?scope=city&start=0001-01-01&end=2026-04-01",
        "/v1/trends/series?scope=city&start=2026-03-01&end=9999-12-31T23:59:59",
        "/v1/trends/series?scope=city&start=0001-01-01T00:00:00%2B14:00&end=2026-04-01&compare=yoy",
        "/v1/trends/intensity?month=0001-01",
        "/v1/trends/intensity?month=9999-12&months=12",
        "/v1/trends/production-state?week=0001-W01",
        "/v1/trends/production-state?week=9999-W52",
    ],
)
async def test_dates_in_year_1_or_9999_are_a_422(
    client: httpx.AsyncClient, keys: Keys, url: str
) -> None:
    _is_problem(await client.get(url, headers=keys.headers("bureau")))


@pytest.mark.parametrize(
    "patch", [{"industry": None}, {"tags": None}, {"name": None}, {"above_scale": None}]
)
async def test_patching_a_required_field_to_null_is_a_422(
    client: httpx.AsyncClient, keys: Keys, patch: dict[str, Any]
) -> None:
    firm = await make_firm(client, keys)
    response = await client.patch(
        f"/v1/firms/{firm['id']}", json=patch, headers=keys.headers("bureau")
    )
    body = _is_problem(response)
    assert "may not be null" in body["detail"]
    cleared = await client.patch(
        f"/v1/firms/{firm['id']}", json={"land_mu": None}, headers=keys.headers("bureau")
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["land_mu"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"land_mu": 1e308},
        {"land_mu": "1e10"},
        {"name": "a\u0000b"},
        {"tags": ["x\u0000"]},
        {"town": "苏\u0000溪"},
    ],
)
async def test_firm_values_the_database_cannot_hold_are_a_422(
    client: httpx.AsyncClient, keys: Keys, change: dict[str, Any]
) -> None:
    firm = await make_firm(client, keys)
    patched = await client.patch(
        f"/v1/firms/{firm['id']}", json=change, headers=keys.headers("bureau")
    )
    _is_problem(patched)
    fresh = {k: firm[k] for k in ("credit_code", "name", "industry", "town")}
    fresh["credit_code"] = "91330782MA0000005K"  # taken or not, the body is checked first
    created = await client.post(
        "/v1/firms", json={**fresh, **change}, headers=keys.headers("bureau")
    )
    _is_problem(created)


@pytest.mark.parametrize(
    "change",
    [
        {"firm_id": int(HUGE)},
        {"code": "M\u0000"},
        {"model": "m\u0000"},
        {"address": {"address": "000102030425", "bus": "dtu://a\u0000b"}},
        {"address": {"address": "000102030425", "bus": "dtu://ab", "k\u0000": 1}},
        {"poll_interval_s": 10**30},
        {"installed_at": "0001-01-01T00:00:00+14:00"},
    ],
)
async def test_meter_values_the_database_cannot_hold_are_a_422(
    client: httpx.AsyncClient, keys: Keys, change: dict[str, Any]
) -> None:
    firm = await make_firm(client, keys)
    meter = {
        "firm_id": firm["id"],
        "code": "BAD-1",
        "protocol": "dlt645",
        "address": {"address": "000102030425", "bus": "dtu://ab"},
        "installed_at": "2026-01-01T00:00:00+08:00",
    }
    response = await client.post(
        "/v1/meters", json={**meter, **change}, headers=keys.headers("field")
    )
    _is_problem(response)


@pytest.mark.parametrize(
    ("url", "unknown", "accepted"),
    [
        (
            "/v1/trends/series?scope=city&start=2026-03-01&end=2026-04-01&granulartiy=hour",
            "granulartiy",
            "granularity",
        ),
        ("/v1/firms?twon=苏溪", "twon", "town"),
        ("/v1/meters?firmid=1", "firmid", "firm_id"),
        ("/v1/terminals?onlin=false", "onlin", "online"),
        ("/v1/trends/top?start=2026-03-01&end=2026-04-01&fromat=csv", "fromat", "format"),
        ("/v1/towns?x=1", "x", None),
    ],
)
async def test_an_unknown_query_parameter_is_a_422_naming_it_and_the_accepted_ones(
    client: httpx.AsyncClient, keys: Keys, url: str, unknown: str, accepted: str | None
) -> None:
    body = _is_problem(await client.get(url, headers=keys.headers("bureau")))
    assert body["unknown"] == [unknown]
    assert f"unknown query parameter {unknown}" in body["detail"]
    if accepted is not None:
        assert accepted in body["accepted"] and accepted in body["detail"]


async def test_a_bad_query_is_still_401_or_403_for_a_caller_without_the_right_key(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    url = "/v1/trends/series?scope=city&start=2026-03-01&end=2026-04-01&granulartiy=hour"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=keys.headers("grid"))).status_code == 403
    assert (
        await client.get("/v1/firms?industry=%00", headers=keys.headers("grid"))
    ).status_code == 403

"""Consumption series against hand sums: every granularity, local buckets, comparisons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from api.trends.schemas import SeriesOut
from tests.api.conftest import Keys
from tests.api.test_trends_helpers import at, new_firm, new_meter, quarters, seed

pytestmark = pytest.mark.integration


async def get(http: httpx.AsyncClient, keys: Keys, **params: Any) -> dict[str, Any]:
    response = await http.get("/v1/trends/series", params=params, headers=keys.headers("bureau"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    SeriesOut.model_validate(body)
    return body


def points(body: dict[str, Any], *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(b[f] for f in ("bucket", *fields)) for b in body["buckets"]]


@pytest.fixture
async def firm(db: asyncpg.Connection) -> tuple[int, int]:
    """A firm with two electricity meters and a water meter; returns (firm, first meter)."""
    firm = await new_firm(db, town="苏溪")
    m1, m2 = await new_meter(db, firm), await new_meter(db, firm)
    water = await new_meter(db, firm, utility="water")
    await seed(
        db,
        m1,
        [
            *quarters(at(2030, 3, 1, 23), 4, 1.0),  # Friday 23:00-24:00 local
            *quarters(at(2030, 3, 2), 4, 2.0),  # Saturday 00:00-01:00
            (at(2030, 3, 3, 12), 3.0),  # Sunday
            (at(2030, 3, 4, 10), 8.0, True),  # Monday, estimated
            (at(2030, 4, 1), 5.0),
        ],
    )
    await seed(db, m2, [(at(2030, 3, 2, 0, 15), 0.5)])
    await seed(db, water, [(at(2030, 3, 2), 100.0)])
    return firm, m1


async def test_every_granularity_of_a_firm(
    http: httpx.AsyncClient, keys: Keys, firm: tuple[int, int]
) -> None:
    firm_id = firm[0]
    common = {"scope": "firm", "id": firm_id}
    body = await get(
        http,
        keys,
        **common,
        granularity="15min",
        start="2030-03-01T23:50",
        end="2030-03-02T00:30",
    )
    assert (body["start"], body["end"]) == (
        "2030-03-01T23:45:00+08:00",
        "2030-03-02T00:30:00+08:00",
    )
    assert points(body, "energy") == [
        ("2030-03-01T23:45:00+08:00", 1.0),
        ("2030-03-02T00:00:00+08:00", 2.0),
        ("2030-03-02T00:15:00+08:00", 2.5),
    ]
    body = await get(
        http, keys, **common, granularity="hour", start="2030-03-01T22:00", end="2030-03-02T02:00"
    )
    assert points(body, "energy") == [
        ("2030-03-01T22:00:00+08:00", None),
        ("2030-03-01T23:00:00+08:00", 4.0),
        ("2030-03-02T00:00:00+08:00", 8.5),
        ("2030-03-02T01:00:00+08:00", None),
    ]
    body = await get(http, keys, **common, granularity="day", start="2030-03-01", end="2030-03-05")
    assert points(body, "energy", "estimated_share") == [
        ("2030-03-01T00:00:00+08:00", 4.0, 0.0),
        ("2030-03-02T00:00:00+08:00", 8.5, 0.0),
        ("2030-03-03T00:00:00+08:00", 3.0, 0.0),
        ("2030-03-04T00:00:00+08:00", 8.0, 1.0),
    ]
    assert body["total"] == {"energy": 23.5, "estimated_share": 0.340426}  # 8 / 23.5
    assert (body["unit"], body["utility"], body["timezone"]) == (
        "kWh",
        "electricity",
        "Asia/Shanghai",
    )
    # Weeks start on Monday 00:00 local: 1-3 March 2030 (Fri-Sun) belong to the week of 25 Feb.
    body = await get(http, keys, **common, granularity="week", start="2030-03-01", end="2030-03-05")
    assert points(body, "energy") == [
        ("2030-02-25T00:00:00+08:00", 15.5),
        ("2030-03-04T00:00:00+08:00", 8.0),
    ]
    assert body["end"] == "2030-03-11T00:00:00+08:00"
    body = await get(
        http, keys, **common, granularity="month", start="2030-03-10", end="2030-05-01"
    )
    assert points(body, "energy") == [
        ("2030-03-01T00:00:00+08:00", 23.5),
        ("2030-04-01T00:00:00+08:00", 5.0),
    ]
    body = await get(
        http,
        keys,
        **common,
        utility="water",
        granularity="day",
        start="2030-03-02",
        end="2030-03-03",
    )
    assert points(body, "energy") == [("2030-03-02T00:00:00+08:00", 100.0)]
    assert body["unit"] == "m3"


async def test_day_buckets_start_at_shanghai_midnight(
    http: httpx.AsyncClient, keys: Keys, firm: tuple[int, int]
) -> None:
    body = await get(
        http,
        keys,
        scope="firm",
        id=firm[0],
        granularity="day",
        start="2030-03-02",
        end="2030-03-03",
    )
    (bucket,) = body["buckets"]
    assert datetime.fromisoformat(bucket["bucket"]) == datetime(2030, 3, 1, 16, tzinfo=UTC)
    # 23:00-24:00 local on the 1st is 15:00-16:00 UTC: not in the day of the 2nd.
    assert bucket["energy"] == 8.5
    # A UTC range is taken as it is and aligned down to the local day containing it.
    body = await get(
        http,
        keys,
        scope="firm",
        id=firm[0],
        granularity="day",
        start="2030-03-01T16:00:00Z",
        end="2030-03-02T16:00:00Z",
    )
    assert points(body, "energy") == [("2030-03-02T00:00:00+08:00", 8.5)]


async def test_meter_series(http: httpx.AsyncClient, keys: Keys, firm: tuple[int, int]) -> None:
    meter = firm[1]
    body = await get(
        http, keys, scope="meter", id=meter, granularity="day", start="2030-03-01", end="2030-03-05"
    )
    assert [b["energy"] for b in body["buckets"]] == [4.0, 8.0, 3.0, 8.0]
    body = await get(
        http,
        keys,
        scope="meter",
        id=meter,
        granularity="15min",
        start="2030-03-02T00:15",
        end="2030-03-02T00:30",
    )
    assert points(body, "energy", "estimated_share") == [("2030-03-02T00:15:00+08:00", 2.0, 0.0)]
    body = await get(
        http,
        keys,
        scope="meter",
        id=meter,
        granularity="week",
        start="2030-03-04",
        end="2030-03-05",
    )
    assert points(body, "energy", "estimated_share") == [("2030-03-04T00:00:00+08:00", 8.0, 1.0)]
    response = await http.get(
        "/v1/trends/series",
        params={
            "scope": "meter",
            "id": meter,
            "utility": "gas",
            "start": "2030-03-01",
            "end": "2030-03-02",
        },
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_period_on_period(http: httpx.AsyncClient, keys: Keys, firm: tuple[int, int]) -> None:
    body = await get(
        http, keys, scope="firm", id=firm[0], start="2030-03-02", end="2030-03-04", compare="pop"
    )
    assert points(body, "energy", "compare_bucket", "compare_energy", "change", "change_ratio") == [
        ("2030-03-02T00:00:00+08:00", 8.5, "2030-03-01T00:00:00+08:00", 4.0, 4.5, 1.125),
        ("2030-03-03T00:00:00+08:00", 3.0, "2030-03-02T00:00:00+08:00", 8.5, -5.5, -0.647059),
    ]
    # The total compares with the two days before: 28 Feb (no data) and 1 March.
    assert body["total"] == {
        "energy": 11.5,
        "estimated_share": 0.0,
        "compare_energy": 4.0,
        "change": 7.5,
        "change_ratio": 1.875,
    }


@pytest.fixture
async def leap_firm(db: asyncpg.Connection) -> int:
    firm = await new_firm(db, town="苏溪")
    meter = await new_meter(db, firm)
    await seed(
        db,
        meter,
        [
            (at(2027, 2, 28, 10), 10.0),
            (at(2027, 3, 1, 10), 20.0),
            (at(2028, 2, 28, 10), 15.0),
            (at(2028, 2, 29, 10), 7.0),
            (at(2028, 3, 1, 10), 30.0),
        ],
    )
    return firm


async def test_year_on_year_across_a_leap_day(
    http: httpx.AsyncClient, keys: Keys, leap_firm: int
) -> None:
    common = {"scope": "firm", "id": leap_firm, "compare": "yoy"}
    body = await get(http, keys, **common, granularity="day", start="2028-02-28", end="2028-03-02")
    fields = ("energy", "compare_bucket", "compare_energy", "change", "change_ratio")
    assert points(body, *fields) == [
        ("2028-02-28T00:00:00+08:00", 15.0, "2027-02-28T00:00:00+08:00", 10.0, 5.0, 0.5),
        # 29 February has no counterpart: never compared with 28 Feb or 1 March.
        ("2028-02-29T00:00:00+08:00", 7.0, None, None, None, None),
        ("2028-03-01T00:00:00+08:00", 30.0, "2027-03-01T00:00:00+08:00", 20.0, 10.0, 0.5),
    ]
    # The total compares the whole range with [2027-02-28, 2027-03-02): 10 + 20.
    assert body["total"] == {
        "energy": 52.0,
        "estimated_share": 0.0,
        "compare_energy": 30.0,
        "change": 22.0,
        "change_ratio": 0.733333,
    }
    body = await get(
        http, keys, **common, granularity="hour", start="2028-02-29T10:00", end="2028-02-29T11:00"
    )
    assert points(body, "energy", "compare_bucket") == [("2028-02-29T10:00:00+08:00", 7.0, None)]
    body = await get(
        http, keys, **common, granularity="hour", start="2028-03-01T10:00", end="2028-03-01T11:00"
    )
    assert points(body, "energy", "compare_energy", "change_ratio") == [
        ("2028-03-01T10:00:00+08:00", 30.0, 20.0, 0.5)
    ]
    body = await get(
        http, keys, **common, granularity="month", start="2028-02-01", end="2028-04-01"
    )
    assert points(body, "energy", "compare_bucket", "compare_energy", "change_ratio") == [
        ("2028-02-01T00:00:00+08:00", 22.0, "2027-02-01T00:00:00+08:00", 10.0, 1.2),
        ("2028-03-01T00:00:00+08:00", 30.0, "2027-03-01T00:00:00+08:00", 20.0, 0.5),
    ]
    # ISO week 9 of 2028 (from Monday 28 Feb) against ISO week 9 of 2027 (from Monday 1 March).
    body = await get(http, keys, **common, granularity="week", start="2028-02-28", end="2028-03-06")
    assert points(body, "energy", "compare_bucket", "compare_energy", "change_ratio") == [
        ("2028-02-28T00:00:00+08:00", 52.0, "2027-03-01T00:00:00+08:00", 20.0, 1.6)
    ]


async def test_csv_and_xlsx_downloads(http: httpx.AsyncClient, keys: Keys, leap_firm: int) -> None:
    params: dict[str, str | int] = {
        "scope": "firm",
        "id": leap_firm,
        "start": "2028-02-28",
        "end": "2028-03-01",
    }
    response = await http.get(
        "/v1/trends/series",
        params={**params, "format": "csv", "lang": "zh"},
        headers=keys.headers("bureau"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="trend-firm-')
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response.content.decode("utf-8-sig").splitlines() == [
        "时间,用量,估算占比",
        "2028-02-28T00:00:00+08:00,15.0,0.0",
        "2028-02-29T00:00:00+08:00,7.0,0.0",
    ]
    response = await http.get(
        "/v1/trends/series",
        params=params,
        headers={
            **keys.headers("bureau"),
            "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert response.status_code == 200
    assert response.content[:4] == b"PK\x03\x04"
    assert response.headers["content-disposition"].endswith(".xlsx")


async def test_a_range_without_data_lists_every_bucket_empty(
    http: httpx.AsyncClient, keys: Keys, firm: tuple[int, int]
) -> None:
    """No rollup in the range nor in the year before it: every bucket with energy null (a
    dashboard's first look at a firm just commissioned), alone, compared and by town."""
    empty = {"start": "2031-05-01", "end": "2031-05-04"}
    days = ["2031-05-01T00:00:00+08:00", "2031-05-02T00:00:00+08:00", "2031-05-03T00:00:00+08:00"]
    body = await get(http, keys, scope="firm", id=firm[0], **empty)
    assert points(body, "energy", "estimated_share") == [(d, None, None) for d in days]
    assert body["total"] == {"energy": None, "estimated_share": None}
    body = await get(http, keys, scope="firm", id=firm[0], compare="yoy", **empty)
    compared = points(body, "energy", "compare_energy", "change")
    assert compared == [(d, None, None, None) for d in days]
    body = await get(http, keys, scope="city", breakdown="town", granularity="week", **empty)
    assert all(b["energy"] is None for b in body["buckets"]) and body["buckets"]

"""The simulated grid feed: its rows, its retries, and pushes into the in-process API."""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from meterhub.settings import Settings
from registry.keys import Role, create_key
from simulators.faults import GarbageValues, LateAnswer, NoAnswer
from simulators.fleet import CityFleet
from simulators.grid_feed import GridFeedClient, GridFeedError, GridFeedPusher, feed_row
from simulators.registry import register_city
from simulators.runner import CityRunner, FeedTarget
from simulators.schedule import floor_tick
from tests.simulators.core_builders import simulated
from tests.simulators.test_runner import NOW, QUARTER, SWAPPED, small_city
from tests.support import in_process_api

TICK = floor_tick(NOW, QUARTER)
Handler = Callable[[httpx.Request], httpx.Response]


async def new_grid_key(settings: Settings, feed: str = "sgcc-yiwu") -> str:
    conn = await asyncpg.connect(settings.dsn())
    try:
        return (await create_key(conn, name="simulated feed", role=Role.GRID, scope=feed)).key
    finally:
        await conn.close()


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    api_settings = settings.model_copy(
        update={"spool_dir": tmp_path / "spool", "batch_max_age": 0.02}
    )
    async with in_process_api(api_settings) as http:
        yield http


def _mock(*answers: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[bytes]]:
    bodies: list[bytes] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://api.test")
    return http, bodies


def _accepted(n: int) -> httpx.Response:
    body = {"received": n, "accepted": n, "duplicates": 0, "conflicts": 0, "rejected": 0}
    return httpx.Response(202, json={**body, "spooled": False, "rejections": []})


# -- rows and retries (no services) --------------------------------------------------------


def test_a_row_is_the_meter_snapshot_under_the_installed_meters_code() -> None:
    meter = next(m for m in CityFleet(small_city("feedrows")).meters if m.spec.id == 9)
    before, after = feed_row(meter, SWAPPED - QUARTER), feed_row(meter, TICK)
    assert before["meter"] == meter.spec.code
    assert after["meter"] == f"{meter.spec.code}-R1"
    snapshot = meter.snapshot(TICK)
    assert after["ts"] == TICK.isoformat()
    assert after["energy"] == snapshot.energy and after["power"] == snapshot.power
    assert set(after) == {"meter", "ts"} | set(meter.values(TICK))


def test_garbage_that_json_cannot_carry_goes_as_a_string() -> None:
    meter = simulated(faults=(GarbageValues(),))
    rows = [feed_row(meter, TICK + k * QUARTER) for k in range(200)]
    texts = [v for row in rows for k, v in row.items() if k not in ("meter", "ts")]
    assert "NaN" in texts  # the API parses it and quarantines the reading as non_finite
    assert all(isinstance(v, float) or v == "NaN" for v in texts)
    orjson.dumps(rows)  # no NaN float left for the encoder to turn into null


async def test_a_busy_api_is_retried_after_its_retry_after() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "0"}, json={"type": "/problems/busy"})
    http, bodies = _mock(httpx.ConnectError("refused"), busy, _accepted(2))
    async with http:
        totals = await GridFeedClient(http, key="k").push([{"meter": "a"}, {"meter": "b"}])
    assert (totals.batches, totals.accepted, totals.retries) == (1, 2, 2)
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same gzip body each time


async def test_a_refused_batch_fails_at_once() -> None:
    http, bodies = _mock(httpx.Response(401, json={"detail": "bad key"}))
    async with http:
        with pytest.raises(GridFeedError, match="401") as refused:
            await GridFeedClient(http, key="k").push([{"meter": "a"}])
    assert refused.value.status == 401 and len(bodies) == 1


async def test_rows_the_api_could_not_take_wait_for_the_next_tick() -> None:
    meters = [m for m in CityFleet(small_city("pending")).meters if m.spec.id in (8, 9)]
    busy = httpx.Response(503, headers={"Retry-After": "5"})
    http, bodies = _mock(busy, _accepted(4))
    async with http:
        pusher = GridFeedPusher(GridFeedClient(http, key="k", max_wait=1.0), meters)
        with pytest.raises(GridFeedError, match="gave up"):
            await pusher.push_at(TICK)
        totals = await pusher.push_at(TICK + QUARTER)
    assert totals.accepted == 4
    sent = orjson.loads(gzip.decompress(bodies[1]))
    assert [row["ts"] for row in sent] == [TICK.isoformat()] * 2 + [
        (TICK + QUARTER).isoformat()
    ] * 2


async def test_silent_meters_leave_gaps_and_late_ones_come_with_the_next_tick() -> None:
    city = small_city("faulty")
    fed = next(m for _, m in city.meters() if m.id == 8)
    silent = replace(fed, faults=(NoAnswer(end=TICK + QUARTER),))
    late = replace(fed, id=10, code=f"{fed.code}-L", faults=(LateAnswer(delay=60.0),))
    firms = (*city.firms[:3], replace(city.firms[3], meters=(silent, late)))
    fleet = CityFleet(replace(city, firms=firms))
    async with httpx.AsyncClient() as http:
        pusher = GridFeedPusher(GridFeedClient(http, key="k"), fleet.feed("sgcc-yiwu"))
        assert pusher.rows_at(TICK) == []
        second = pusher.rows_at(TICK + QUARTER)
    assert [(r["meter"], r["ts"]) for r in second] == [
        (late.code, TICK.isoformat()),
        (silent.code, (TICK + QUARTER).isoformat()),
    ]


# -- into the API ------------------------------------------------------------------------


async def _stored(db: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT meter_id, ts, energy, energy_valley, power, voltage_a, current_c, power_factor, "
        "source FROM readings WHERE meter_id = ANY($1::bigint[]) ORDER BY meter_id, ts",
        ids,
    )


@pytest.mark.integration
async def test_the_pusher_lands_exact_readings_in_the_database(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    meters = fleet.feed("sgcc-yiwu")
    pusher = GridFeedPusher(GridFeedClient(api, key=await new_grid_key(settings)), meters)
    first = await pusher.push_at(TICK)
    assert (first.received, first.accepted, first.rejected) == (2, 2, 0)
    again = await pusher.push_at(TICK)
    assert (again.accepted, again.duplicates) == (0, 2)
    codes = [m.installation_at(TICK).code for m in meters]
    rows = await _stored(db, [ids[c] for c in codes])
    expected = []
    for meter in meters:
        s = meter.snapshot(TICK)
        expected.append(
            (TICK, s.energy, s.energy_valley, s.power, s.voltage_a, s.current_c, s.power_factor)
        )
    assert [tuple(r.values())[1:-1] for r in rows] == expected
    assert {r["source"] for r in rows} == {"grid:sgcc-yiwu"}
    assert not any(math.isnan(r["energy"]) for r in rows)


@pytest.mark.integration
async def test_the_runner_pushes_the_latest_tick_at_start(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    city = small_city()
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    fleet = CityFleet(city)
    target = FeedTarget(GridFeedClient(api, key=await new_grid_key(settings)), "api", "sgcc-yiwu")
    runner = CityRunner(fleet, clock=lambda: NOW, feed=target, protocols={"grid-feed"})
    async with runner:
        assert [(e.gateway, e.where, e.meters) for e in runner.endpoints] == [
            ("sgcc-yiwu", "api/v1/readings", 2)
        ]
        for _ in range(200):
            if runner.pusher is not None and runner.pusher.totals.batches:
                break
            await asyncio.sleep(0.05)
    assert runner.pusher is not None and runner.pusher.totals.accepted == 2
    codes = [m.installation_at(TICK).code for m in fleet.feed("sgcc-yiwu")]
    assert [r["ts"] for r in await _stored(db, [ids[c] for c in codes])] == [TICK, TICK]

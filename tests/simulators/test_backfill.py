"""Fast-forward: history through the grid feed, the broker and the ingest sink, counted exactly."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta

import asyncpg
import pytest

from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.backfill import backfill_feed, backfill_mqtt, backfill_polled, expected_readings
from simulators.broker_users import create_broker_users, mqtt_gateways
from simulators.city import generate_city
from simulators.fleet import CityFleet
from simulators.grid_feed import GridFeedClient
from simulators.registry import register_city
from simulators.schedule import history_ticks
from tests.simulators.core_builders import at
from tests.simulators.test_grid_feed import new_grid_key
from tests.simulators.test_runner import NOW, QUARTER, small_city
from tests.support import in_process_api, mqtt_ingest

WEEK = history_ticks(until=NOW, span=timedelta(weeks=1), interval=QUARTER)
DAY = WEEK[-96:]


async def _count_and_energy(
    db: asyncpg.Connection, meter_id: int
) -> tuple[int, dict[object, float]]:
    rows = await db.fetch("SELECT ts, energy FROM readings WHERE meter_id = $1", meter_id)
    return len(rows), {r["ts"]: r["energy"] for r in rows}


def test_a_week_of_quarter_hours_is_672_ticks_before_the_end() -> None:
    assert len(WEEK) == 672
    assert WEEK[-1] == at(2026, 11, 2, 9, 45) and WEEK[0] == at(2026, 10, 26, 10, 0)
    assert all(b - a == QUARTER for a, b in itertools.pairwise(WEEK))
    assert history_ticks(until=at(2026, 11, 2, 10), span=timedelta(days=1), interval=QUARTER)[
        -1
    ] == at(2026, 11, 2, 9, 45)


@pytest.mark.integration
async def test_a_week_of_two_feed_meters_is_2_x_672_readings_equal_to_the_simulator(
    db: asyncpg.Connection, sink_settings: Settings
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    meters = fleet.feed("sgcc-yiwu")
    assert expected_readings(meters, WEEK) == 2 * 672
    seen: list[int] = []
    async with in_process_api(sink_settings) as http:
        client = GridFeedClient(http, key=await new_grid_key(sink_settings))
        totals = await backfill_feed(client, meters, WEEK, batch_size=500, progress=seen.append)
    assert (totals.received, totals.accepted, totals.rejected) == (1344, 1344, 0)
    assert totals.batches == 3 and sum(seen) == 1344
    for meter in meters:
        code = meter.installation_at(WEEK[0]).code  # the replaced one's successor
        count, energy = await _count_and_energy(db, ids[code])
        assert count == 672
        assert energy == {ts: meter.energy_at(ts)["total"] for ts in WEEK}


@pytest.mark.integration
async def test_polled_meters_history_goes_through_the_ingest_sink(
    db: asyncpg.Connection, sink: IngestSink
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    result = await backfill_polled(sink, fleet, DAY, meter_ids=ids, batch_size=100)
    assert (result.accepted, result.rejected) == (4 * 96, [])
    port = city.gateway("mb-1").port
    for meter in fleet.speaking("modbus") + fleet.speaking("dlt645"):
        rows = await db.fetch(
            "SELECT ts, energy, source FROM readings WHERE meter_id = $1 ORDER BY ts",
            ids[meter.spec.code],
        )
        assert [r["ts"] for r in rows] == DAY
        assert [r["energy"] for r in rows] == [meter.energy_at(ts)["total"] for ts in DAY]
        if meter.spec.protocol == "modbus":
            assert rows[0]["source"] == f"modbus:tcp://127.0.0.1:{port}"


@pytest.mark.integration
async def test_mqtt_history_arrives_through_the_broker(
    db: asyncpg.Connection, sink_settings: Settings
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    (gateway_id,) = mqtt_gateways(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    create_broker_users(city, sink_settings)
    meters = [m for m in fleet.on(gateway_id) if m.spec.code in ids]
    async with mqtt_ingest(sink_settings, gateway_id):
        url = f"mqtt://127.0.0.1:{sink_settings.mqtt_port}"
        sent = await backfill_mqtt(fleet, [gateway_id], DAY, url=url, per_message=50)
        assert sent == 2 * 96  # the third meter is installed later
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = [(await _count_and_energy(db, ids[m.spec.code]))[0] for m in meters]
            if counts == [96, 96]:
                break
            await asyncio.sleep(0.1)
    for meter in meters:
        count, energy = await _count_and_energy(db, ids[meter.spec.code])
        assert count == 96
        assert energy == {ts: meter.energy_at(ts)["total"] for ts in DAY}


@pytest.mark.slow
@pytest.mark.integration
async def test_eight_weeks_of_a_hundred_firms_feed_in_well_under_minutes(
    sink_settings: Settings,
) -> None:
    city = generate_city(firms=100, seed=5, start=at(2026, 9, 7), host="127.0.0.9")
    fleet = CityFleet(city)
    conn = await asyncpg.connect(sink_settings.dsn())
    try:
        await register_city(conn, city, as_of=NOW)
    finally:
        await conn.close()
    ticks = history_ticks(until=NOW, span=timedelta(weeks=8), interval=QUARTER)
    meters = fleet.feed("sgcc-yiwu")
    began = time.perf_counter()
    async with in_process_api(sink_settings) as http:
        client = GridFeedClient(http, key=await new_grid_key(sink_settings))
        totals = await backfill_feed(client, meters, ticks, faults=False)
    took = time.perf_counter() - began
    print(f"\n{totals.accepted} readings of {len(meters)} feed meters in {took:.1f} s")
    assert totals.accepted == expected_readings(meters, ticks) > 0
    assert took < 120

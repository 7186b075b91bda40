"""Energy kept across meter swaps and CT/PT ratio changes, against hand-computed values:
through the API, the ingest sink and the interval worker on the real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from tests.api.conftest import Keys
from tests.api.test_registry import make_firm
from tests.support import create_meters, derive_all, in_process_api

pytestmark = pytest.mark.integration

Q = timedelta(minutes=15)
DAY = datetime(2026, 5, 12, tzinfo=LOCAL_TZ)
SWAP = DAY + timedelta(hours=10, minutes=7)
FEED = {"feed": "test"}  # create_meters registers grid-feed meters without one


@pytest.fixture
async def sink(sink_settings: Settings, tmp_path: Path) -> AsyncIterator[IngestSink]:
    """A sink beside the API's, with a spool of its own."""
    own = sink_settings.model_copy(update={"spool_dir": tmp_path / "sink-spool"})
    async with IngestSink(own) as running:
        yield running


async def firm_day(db: asyncpg.Connection, meter_id: int, day: datetime) -> float:
    energy: float = await db.fetchval(
        "SELECT r.energy FROM firm_rollups r JOIN meters m ON m.firm_id = r.firm_id "
        "WHERE m.id = $1 AND r.granularity = 'day' AND r.bucket = $2",
        meter_id,
        day,
    )
    return energy


async def swap_day(
    client: httpx.AsyncClient,
    keys: Keys,
    sink: IngestSink,
    db: asyncpg.Connection,
    readings_at_swap: dict[str, str],
    *,
    old: int | None = None,
    address: dict[str, str] | None = FEED,
) -> tuple[int, int]:
    """Old meter (CT 1; ``old``, default a new grid-feed one): 1 kWh per quarter 00:00 ->
    10:00 (100 -> 140); the swap at 10:07 to ``address`` (None: the old one's); new meter
    (CT 2): 5.2 at 10:15, then 0.5 per quarter to 24:00 (32.7)."""
    if old is None:
        (old,) = await create_meters(db, 1)
    await sink.submit(
        [Reading(meter_id=old, ts=DAY + i * Q, energy=100.0 + i, source="t") for i in range(41)]
    )
    code = await db.fetchval("SELECT code FROM meters WHERE id = $1", old)
    new_address = {} if address is None else {"address": address}
    swap = await client.post(
        f"/v1/meters/{old}/replace",
        json={
            "code": code + "-new",
            "at": SWAP.isoformat(),
            "ct_ratio": "2",
            **new_address,
            **readings_at_swap,
        },
        headers=keys.headers("field"),
    )
    assert swap.status_code == 201, swap.text
    new = int(swap.json()["id"])
    first = DAY + timedelta(hours=10, minutes=15)
    await sink.submit(
        [
            Reading(meter_id=new, ts=first + k * Q, energy=round(5.2 + 0.5 * k, 2), source="t")
            for k in range(56)
        ]
    )
    await derive_all(db)
    return old, new


AT_SWAP = {"old_final_energy": "140.5", "new_initial_energy": "5.0"}


async def assert_swap_energy_kept(db: asyncpg.Connection, old: int, new: int) -> None:
    """The day of `swap_day` with `AT_SWAP`: both sides of the swap counted."""
    # Old: 140.5 - 100 = 40.5 kWh; new: (32.7 - 5.0) x 2 = 55.4 kWh.
    assert await firm_day(db, old, DAY) == pytest.approx(95.9, abs=1e-6)
    ten = DAY + timedelta(hours=10)
    old_last = await db.fetchval(
        "SELECT energy FROM intervals WHERE meter_id = $1 AND start = $2", old, ten
    )
    new_first = await db.fetchval(
        "SELECT energy FROM intervals WHERE meter_id = $1 AND start = $2", new, ten
    )
    assert (old_last, new_first) == (pytest.approx(0.5), pytest.approx(0.4))  # 0.2 x 2
    sources = await db.fetch(
        "SELECT meter_id, energy FROM readings WHERE source = 'swap' AND ts = $1 "
        "AND meter_id = ANY($2::bigint[]) ORDER BY meter_id",
        SWAP,
        [old, new],
    )
    assert [(r["meter_id"], r["energy"]) for r in sources] == [(old, 140.5), (new, 5.0)]
    events = await db.fetchval(
        "SELECT count(*) FROM interval_events WHERE meter_id = ANY($1::bigint[])", [old, new]
    )
    assert events == 0


async def test_a_swap_with_its_register_readings_keeps_the_energy(
    client: httpx.AsyncClient, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    old, new = await swap_day(client, keys, sink, db, AT_SWAP)
    await assert_swap_energy_kept(db, old, new)


async def test_a_meter_registered_under_older_rules_is_replaced_keeping_its_energy(
    client: httpx.AsyncClient, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    # A grid-feed meter stored without the feed today's registration requires (as a city
    # upsert or an older release stored it): its address is not input, the swap keeps it.
    old, new = await swap_day(client, keys, sink, db, AT_SWAP, address=None)
    await assert_swap_energy_kept(db, old, new)
    stored = await db.fetch(
        "SELECT address FROM meters WHERE id = ANY($1::bigint[]) ORDER BY id", [old, new]
    )
    assert [orjson.loads(r["address"]) for r in stored] == [{}, {}]


def _modbus(firm_id: object, host: str) -> dict[str, object]:
    return {
        "firm_id": firm_id,
        "code": f"SWAP-{uuid.uuid4().hex[:8]}",
        "protocol": "modbus",
        "address": {"host": host, "port": 502, "unit_id": 1},
        "installed_at": "2026-01-01T00:00:00+08:00",
    }


async def test_a_meter_outside_todays_networks_is_replaced_keeping_its_energy(
    api_settings: Settings, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    """Registered at 127.0.0.2 under MHUB_COLLECT_NETWORKS=127.0.0.0/30, replaced after the
    list shrank to 127.0.0.1/32: the stored address is kept, a new one is checked."""
    wide = api_settings.model_copy(update={"collect_networks": "127.0.0.0/30"})
    narrow = api_settings.model_copy(update={"collect_networks": "127.0.0.1/32"})
    async with in_process_api(wide) as client:
        firm = await make_firm(client, keys)
        body = _modbus(firm["id"], "127.0.0.2")
        created = await client.post("/v1/meters", json=body, headers=keys.headers("field"))
        assert created.status_code == 201, created.text
    old = int(created.json()["id"])
    async with in_process_api(narrow) as client:
        outside = await client.post(
            f"/v1/meters/{old}/replace",
            json={
                "code": f"{body['code']}-out",
                "at": SWAP.isoformat(),
                "address": {"host": "127.0.0.3", "port": 502, "unit_id": 1},
                **AT_SWAP,
            },
            headers=keys.headers("field"),
        )
        assert outside.status_code == 422, outside.text
        assert outside.headers["content-type"].startswith("application/problem+json")
        problem = outside.json()
        assert problem["type"] == "/problems/address_not_allowed"
        assert problem["setting"] == "MHUB_COLLECT_NETWORKS"
        assert problem["allowed"] == ["127.0.0.1/32"]
        assert "127.0.0.3" in problem["detail"] and "MHUB_COLLECT_NETWORKS" in problem["detail"]
        assert await db.fetchval("SELECT removed_at FROM meters WHERE id = $1", old) is None
        assert not await db.fetchval(
            "SELECT count(*) FROM readings WHERE meter_id = $1 AND source = 'swap'", old
        )
        old_again, new = await swap_day(client, keys, sink, db, AT_SWAP, old=old, address=None)
    assert old_again == old
    await assert_swap_energy_kept(db, old, new)
    address = await db.fetchval("SELECT address FROM meters WHERE id = $1", new)
    assert orjson.loads(address) == body["address"]


async def test_a_swap_without_readings_says_the_energy_is_lost_and_invents_none(
    client: httpx.AsyncClient, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    old, new = await swap_day(client, keys, sink, db, {})
    # Only the pairs each meter read: 40 kWh old, 27.5 x 2 = 55 kWh new.
    assert await firm_day(db, old, DAY) == pytest.approx(95.0, abs=1e-6)
    events = await db.fetch(
        "SELECT meter_id, start, \"end\", detail->>'missing' AS missing FROM interval_events "
        "WHERE kind = 'unknown_swap_energy' AND meter_id = ANY($1::bigint[]) ORDER BY meter_id",
        [old, new],
    )
    assert [(e["meter_id"], e["start"], e["end"], e["missing"]) for e in events] == [
        (old, SWAP, SWAP, "final"),
        (new, SWAP, SWAP, "initial"),
    ]
    # A late reading re-derives the old meter's last window: the event stays.
    await sink.submit([Reading(meter_id=old, ts=DAY + 40 * Q, energy=140.0, source="again")])
    await db.execute(
        "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs) "
        "VALUES (ARRAY[$1::bigint], ARRAY[$2::timestamptz], ARRAY[$2::timestamptz])",
        old,
        DAY + 40 * Q,
    )
    await derive_all(db)
    kinds = await db.fetchval(
        "SELECT count(*) FROM interval_events WHERE kind = 'unknown_swap_energy' "
        "AND meter_id = ANY($1::bigint[])",
        [old, new],
    )
    assert kinds == 2


async def test_a_swap_reading_that_contradicts_a_stored_one_is_a_conflict(
    client: httpx.AsyncClient, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    (old,) = await create_meters(db, 1)
    await sink.submit([Reading(meter_id=old, ts=SWAP, energy=7.0, source="t")])
    code = await db.fetchval("SELECT code FROM meters WHERE id = $1", old)
    body = {"code": code + "-n", "at": SWAP.isoformat(), "address": FEED, "old_final_energy": "8"}
    refused = await client.post(
        f"/v1/meters/{old}/replace", json=body, headers=keys.headers("field")
    )
    assert refused.status_code == 409, refused.text
    assert await db.fetchval("SELECT removed_at FROM meters WHERE id = $1", old) is None
    body["old_final_energy"] = "7"
    same = await client.post(f"/v1/meters/{old}/replace", json=body, headers=keys.headers("field"))
    assert same.status_code == 201, same.text


async def intervals(db: asyncpg.Connection, meter: int) -> list[tuple[datetime, float]]:
    rows = await db.fetch(
        "SELECT start, energy FROM intervals WHERE meter_id = $1 ORDER BY start", meter
    )
    return [(r["start"], r["energy"]) for r in rows]


async def test_late_readings_take_the_ratio_that_held_then(
    client: httpx.AsyncClient, keys: Keys, sink: IngestSink, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1, ct=40)
    eight = DAY + timedelta(hours=8)
    # 0.5 kWh secondary per quarter 08:00 -> 12:00; the 09:30 reading comes late.
    late = eight + 6 * Q
    readings = [
        Reading(meter_id=meter, ts=eight + i * Q, energy=10.0 + 0.5 * i, source="t")
        for i in range(17)
    ]
    await sink.submit([r for r in readings if r.ts != late])
    await derive_all(db)
    assert {e for _, e in await intervals(db, meter)} == {20.0}

    def change(valid_from: datetime, ct: str) -> dict[str, str]:
        return {"valid_from": valid_from.isoformat(), "ct_ratio": ct}

    ten, nine = eight + 8 * Q, eight + 4 * Q
    url = f"/v1/meters/{meter}/ratios"
    first = await client.post(url, json=change(ten, "80"), headers=keys.headers("field"))
    assert first.status_code == 201, first.text
    second = await client.post(url, json=change(nine, "60"), headers=keys.headers("bureau"))
    assert second.status_code == 201, second.text
    periods = await client.get(url, headers=keys.headers("town"))
    assert [(p["ct_ratio"], p["multiplier"]) for p in periods.json()] == [
        ("40", "40"),
        ("60", "60"),
        ("80", "80"),
    ]
    assert await db.fetchval("SELECT ct_ratio FROM meters WHERE id = $1", meter) == 80
    await derive_all(db)
    await sink.submit([r for r in readings if r.ts == late])
    await derive_all(db)
    expected = [(eight + i * Q, 20.0 if i < 4 else 30.0 if i < 8 else 40.0) for i in range(16)]
    assert await intervals(db, meter) == expected
    day = await db.fetchval(
        "SELECT energy FROM meter_rollups WHERE granularity = 'day' AND meter_id = $1", meter
    )
    assert day == pytest.approx(4 * 20 + 4 * 30 + 8 * 40)  # 520 kWh


async def test_a_ratio_change_outside_the_meter_life_is_refused(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    before = {"valid_from": "2020-01-01T00:00:00+08:00", "ct_ratio": "5"}
    response = await client.post(
        f"/v1/meters/{meter}/ratios", json=before, headers=keys.headers("field")
    )
    assert response.status_code == 422, response.text
    missing = await client.post(
        "/v1/meters/999999999/ratios",
        json={**before, "valid_from": "2026-01-01T00:00:00+08:00"},
        headers=keys.headers("field"),
    )
    assert missing.status_code == 404


async def test_ratios_edited_on_the_meter_itself_start_a_period_now(
    db: asyncpg.Connection,
) -> None:
    (meter,) = await create_meters(db, 1, ct=40)
    await db.execute("UPDATE meters SET ct_ratio = 50, max_power = 900 WHERE id = $1", meter)
    await db.execute("UPDATE meters SET max_power = 800 WHERE id = $1", meter)
    rows = await db.fetch(
        "SELECT ct_ratio, valid_from > now() - interval '1 minute' AS recent FROM meter_ratios "
        "WHERE meter_id = $1 ORDER BY valid_from",
        meter,
    )
    assert [(r["ct_ratio"], r["recent"]) for r in rows] == [(40, False), (50, True)]


async def test_a_ratio_change_must_change_a_ratio(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (meter,) = await create_meters(db, 1)
    response = await client.post(
        f"/v1/meters/{meter}/ratios",
        json={"valid_from": "2026-01-01T00:00:00+08:00"},
        headers=keys.headers("field"),
    )
    assert response.status_code == 422, response.text
    assert await db.fetchval("SELECT count(*) FROM meter_ratios WHERE meter_id = $1", meter) == 1

"""Terminal status per firm and town, and the collectors' part of /readyz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from collectors.terminals import TerminalBook
from tests.api.conftest import OTHER_TOWN, TOWN, Keys
from tests.support import create_meters

pytestmark = pytest.mark.integration


async def polled(db: asyncpg.Connection, meters: list[int]) -> None:
    """Make ``meters`` Modbus terminals (the poll scheduler's state is theirs)."""
    await db.execute(
        "UPDATE meters SET protocol = 'modbus', "
        'address = \'{"host": "127.0.0.1", "port": 9, "unit_id": 1}\' '
        "WHERE id = ANY($1)",
        meters,
    )


async def test_terminal_health_by_town(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    mine = await create_meters(db, 2, town=TOWN)
    theirs = await create_meters(db, 1, town=OTHER_TOWN)
    await polled(db, [*mine, *theirs])
    firm_id = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", mine[0])
    now = datetime.now(UTC)
    book = TerminalBook(offline_after=1, drift_tolerance=timedelta(seconds=30))
    book.success(mine[0], now)
    book.clock(mine[0], meter_time=now + timedelta(seconds=95), host_time=now)
    book.failure(mine[1], now, "RequestTimeoutError: no answer")
    book.success(theirs[0], now)
    await book.flush(db)
    await db.execute(
        "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, 1, 't')",
        mine[0],
        now - timedelta(minutes=3),
    )

    page = (
        await client.get(f"/v1/terminals?firm_id={firm_id}", headers=keys.headers("town"))
    ).json()
    assert (page["total"], page["online"], page["offline"]) == (2, 1, 1)
    by_id = {t["meter_id"]: t for t in page["items"]}
    assert by_id[mine[0]]["clock_drift_s"] == pytest.approx(95)
    assert by_id[mine[0]]["last_reading_at"] is not None
    assert by_id[mine[1]]["last_error"] == "RequestTimeoutError: no answer"
    assert by_id[mine[1]]["reason"] == "never answered a poll: RequestTimeoutError: no answer"
    assert by_id[mine[0]]["status_from"] == "polls" and by_id[mine[0]]["reason"] is None
    offline = (
        await client.get(
            f"/v1/terminals?online=false&firm_id={firm_id}", headers=keys.headers("bureau")
        )
    ).json()
    assert [t["meter_id"] for t in offline["items"]] == [mine[1]]
    town_view = (await client.get("/v1/terminals?limit=5000", headers=keys.headers("town"))).json()
    assert {t["town"] for t in town_view["items"]} == {TOWN}
    refused = await client.get(f"/v1/terminals?town={OTHER_TOWN}", headers=keys.headers("town"))
    assert refused.status_code == 403


async def test_readyz_reports_a_stuck_collector(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO collector_heartbeats (name, started_at, beat_at, meters) "
        "VALUES ('stuck-test', now() - interval '1 hour', now() - interval '10 minutes', 5)"
    )
    try:
        response = await client.get("/readyz", headers=keys.headers("field"))
        assert response.status_code == 503
        assert "stuck-test" in response.json()["checks"]["collectors"]["detail"]
        await db.execute(
            "UPDATE collector_heartbeats SET beat_at = now() WHERE name = 'stuck-test'"
        )
        ready = await client.get("/readyz", headers=keys.headers("field"))
        assert ready.status_code == 200
        assert "stuck-test (5 meters)" in ready.json()["checks"]["collectors"]["detail"]
    finally:
        await db.execute("DELETE FROM collector_heartbeats WHERE name = 'stuck-test'")


async def test_a_field_key_reads_firms_meters_and_terminals_of_every_town(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    (mine,) = await create_meters(db, 1, town=TOWN)
    (theirs,) = await create_meters(db, 1, town=OTHER_TOWN)
    field = keys.headers("field")
    terminals = (await client.get("/v1/terminals?limit=5000", headers=field)).json()
    assert {mine, theirs} <= {t["meter_id"] for t in terminals["items"]}
    meters = (await client.get("/v1/meters?limit=5000", headers=field)).json()
    assert {mine, theirs} <= {m["id"] for m in meters}
    for meter_id in (mine, theirs):
        meter = (await client.get(f"/v1/meters/{meter_id}", headers=field)).json()
        firm = await client.get(f"/v1/firms/{meter['firm_id']}", headers=field)
        assert firm.status_code == 200, firm.text
    other_town = await client.get(f"/v1/firms?town={OTHER_TOWN}", headers=field)
    assert other_town.json()["total"] >= 1
    for refused in ("/v1/findings", "/v1/notices", "/v1/trends/top", "/v1/campaign"):
        assert (await client.get(refused, headers=field)).status_code == 403, refused

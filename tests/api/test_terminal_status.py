"""Terminal status as field staff see it: pushing terminals judged by their last reading,
a polled one registered at an address nothing answers on is offline with the reason."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.scheduler import LinkWorker, ScheduleOptions
from collectors.targets import load_targets
from collectors.terminals import TerminalBook
from ingest.sink import IngestSink
from meterhub.settings import Settings
from tests.api.conftest import Keys
from tests.support import create_meters

pytestmark = pytest.mark.integration


@pytest.fixture
def sink_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The collector's sink spools apart from the in-process API's."""
    return settings.model_copy(update={"spool_dir": tmp_path / "collector-spool"})


async def _reading(db: asyncpg.Connection, meter_id: int, at: datetime) -> None:
    await db.execute(
        "INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, 1, 't')",
        meter_id,
        at,
    )


async def _page(client: httpx.AsyncClient, keys: Keys, firm_id: int, **query: str) -> dict:  # type: ignore[type-arg]
    params = {"firm_id": str(firm_id), **query}
    response = await client.get("/v1/terminals", params=params, headers=keys.headers("field"))
    assert response.status_code == 200, response.text
    page: dict = response.json()  # type: ignore[type-arg]
    return page


async def test_pushing_terminals_are_online_while_their_readings_arrive(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection
) -> None:
    fresh, stale, silent, new = await create_meters(db, 4)  # grid-feed, every 15 min
    firm_id = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", fresh)
    await db.execute(
        "UPDATE meters SET protocol = 'mqtt', address = $2::jsonb WHERE id = $1",
        silent,
        orjson.dumps({"gateway_id": "gw-status", "channel": 1}).decode(),
    )
    now = datetime.now(UTC)
    await db.execute("UPDATE meters SET installed_at = $2 WHERE id = $1", new, now)
    await _reading(db, fresh, now - timedelta(minutes=3))
    await _reading(db, stale, now - timedelta(hours=2))

    page = await _page(client, keys, firm_id)
    assert (page["total"], page["online"], page["offline"], page["unknown"]) == (4, 1, 2, 1)
    by_id = {t["meter_id"]: t for t in page["items"]}
    assert {t["status_from"] for t in page["items"]} == {"readings"}
    assert (by_id[fresh]["online"], by_id[fresh]["reason"]) == (True, None)
    assert by_id[stale]["online"] is False
    assert by_id[stale]["reason"].startswith("no reading since ")
    assert "expected every 15 min" in by_id[stale]["reason"]
    assert by_id[silent]["online"] is False and by_id[silent]["protocol"] == "mqtt"
    assert by_id[silent]["reason"] == "no reading in the past 7 days (expected every 15 min)"
    assert (by_id[new]["online"], by_id[new]["reason"]) == (None, None)
    assert [t["meter_id"] for t in page["items"]][:2] == sorted(
        [stale, silent], key=lambda m: by_id[m]["code"]
    )  # offline ones first
    offline = await _page(client, keys, firm_id, online="false")
    assert {t["meter_id"] for t in offline["items"]} == {stale, silent}


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_polled_meter_at_an_address_nothing_answers_on_is_offline(
    client: httpx.AsyncClient, keys: Keys, db: asyncpg.Connection, sink: IngestSink
) -> None:
    (meter,) = await create_meters(db, 1)
    firm_id = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", meter)
    address = {"host": "127.0.0.1", "port": _unused_port(), "unit_id": 1}
    await db.execute(
        "UPDATE meters SET protocol = 'modbus', address = $2::jsonb WHERE id = $1",
        meter,
        orjson.dumps(address).decode(),
    )
    link = f"tcp://127.0.0.1:{address['port']}"
    targets = (await load_targets(db, ["modbus"]))[link]
    book = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
    poller = ModbusPoller(LinkOptions(timeout=0.3, retries=0))
    options = ScheduleOptions(timeout=0.3, retries=0)
    worker = LinkWorker(targets, poller=poller, sink=sink, book=book, options=options)
    try:
        await worker.cycle(targets)
        await book.flush(db)
        (first,) = (await _page(client, keys, firm_id))["items"]
        assert first["online"] is False  # one failed poll, never an answer: never online
        assert first["reason"].startswith("never answered a poll: ")
        assert "cannot connect" in first["reason"]
        assert first["last_error"] in first["reason"] and first["consecutive_failures"] == 1
        for _ in range(2):
            await worker.cycle(targets)
        events = await book.flush(db)
    finally:
        await poller.close()
    assert [(e.meter_id, e.kind) for e in events] == [(meter, "offline")]
    (after,) = (await _page(client, keys, firm_id, online="false"))["items"]
    assert after["consecutive_failures"] == 3 and after["status_from"] == "polls"
    assert after["reason"].startswith("never answered a poll: ")
    assert f"127.0.0.1:{address['port']}" in after["reason"]


async def test_a_restarted_collector_keeps_when_the_meter_last_answered(
    db: asyncpg.Connection,
) -> None:
    (meter,) = await create_meters(db, 1)
    answered = datetime.now(UTC) - timedelta(hours=1)
    before = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
    before.success(meter, answered)
    await before.flush(db)
    after = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
    after.failure(meter, datetime.now(UTC), "TimeoutError: ")
    await after.flush(db)
    kept = await db.fetchval(
        "SELECT last_success_at FROM terminal_status WHERE meter_id = $1", meter
    )
    assert kept == answered

"""The collector benchmark's meters in its throwaway database: registering them (a row per
simulated meter) and counting what was stored; and the console and constants both of its
phases share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import asyncpg
import orjson
from rich.console import Console

from collectors.modbus import list_models, load_model
from simulators.modbus_fleet import fleet_layout

console = Console(stderr=True)
INTERVAL = 60.0
PROTOCOLS = ("modbus", "dlt645")
Row = tuple[dict[str, object], str | None]  # a meter's address and model


async def register(dsn: str, *, protocol: str, rows: Sequence[Row]) -> None:
    """One meter of the bench firm per ``(address, model)`` row, polled every minute."""
    conn = await asyncpg.connect(dsn)
    try:
        firm = await conn.fetchval(
            "INSERT INTO firms (credit_code, name, industry, town) "
            "VALUES ('91350100M000100Y43', 'bench', 'C17', '苏溪') "
            "ON CONFLICT (credit_code) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        )
        await conn.execute(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, model, "
            "poll_interval, installed_at) SELECT $1, $2 || n, 'electricity', $2, a::jsonb, m, "
            "$3, '2025-01-01' FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS t(a, m, n)",
            firm,
            protocol,
            timedelta(seconds=INTERVAL),
            [orjson.dumps(address).decode() for address, _ in rows],
            [model for _, model in rows],
        )
    finally:
        await conn.close()


def modbus_rows(urls: list[str], *, units: int, count: int) -> list[Row]:
    """The first ``count`` meters `simulators.modbus_fleet` serves (its layout: the shipped
    models in turn)."""
    names = list_models()
    models = [load_model(name) for name in names]
    name_of = {id(model): name for model, name in zip(models, names, strict=True)}
    rows: list[Row] = []
    layout = fleet_layout(ports=len(urls), units=units, models=models)
    for url, meters in zip(urls, layout, strict=True):
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        for unit, model in meters.items():
            rows.append(({"host": host, "port": int(port), "unit_id": unit}, name_of[id(model)]))
    return rows[:count]


def dlt645_rows(lines: list[str], *, count: int, gap_ms: float | None) -> list[Row]:
    """The first ``count`` meters `simulators.dlt645_fleet` printed (``url address ...``)."""
    rows: list[Row] = []
    for line in lines:
        url, *addresses = line.split()
        bus = url if gap_ms is None else f"{url}?gap_ms={gap_ms:g}"
        rows += [({"address": address, "bus": bus}, None) for address in addresses]
    return rows[:count]


async def count_rows(dsn: str) -> tuple[dict[str, int], int]:
    """Readings stored per protocol, and quarantined records."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT m.protocol, count(*) AS n FROM readings r JOIN meters m ON m.id = r.meter_id "
            "GROUP BY m.protocol"
        )
        quarantined: int = await conn.fetchval("SELECT count(*) FROM quarantine")
    finally:
        await conn.close()
    return dict.fromkeys((*PROTOCOLS, "mqtt"), 0) | {
        r["protocol"]: r["n"] for r in rows
    }, quarantined

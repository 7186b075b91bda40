"""API benchmark: sustained HTTP push throughput against in-process `submit`, in one run.

    .venv/bin/python bench/api.py [--quick] [--json]

(a) in-process: `IngestSink.submit` of batches of 5,000 readings from several producers;
(b) HTTP: `meterhub serve` in its own process, several concurrent clients POSTing the same
kind of batches to /v1/readings as JSON and as CSV. Prints readings/s of each and the
ratio (b)/(a) (target >= 0.7). (c) trend queries over HTTP on a database of FIRMS firms x
DAYS days of 15-minute intervals (2,000 x 90: about 17 million interval rows) with their
rollups: p50/p95 of a firm's year by day (target p95 < 100 ms) and of the city by town by
week over the 90 days (target p95 < 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from pydantic import SecretStr
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _trend_data as trend_data
from bench._db import bench_database
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings, get_settings
from registry.keys import Role, create_key

console = Console(stderr=True)
T0 = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)
FEED = "bench-feed"


async def setup(dsn: str, meters: int) -> tuple[dict[str, int], str]:
    conn = await asyncpg.connect(dsn)
    try:
        firm = await conn.fetchval(
            "INSERT INTO firms (credit_code, name, industry, town) "
            "VALUES ('91350100M000100Y43', 'bench', 'C17', '苏溪') RETURNING id"
        )
        rows = await conn.fetch(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, installed_at) "
            "SELECT $1, 'G' || g, 'electricity', 'grid-feed', jsonb_build_object('feed', $2::text),"
            " '2025-01-01' FROM generate_series(1, $3) g RETURNING id, code",
            firm,
            FEED,
            meters,
        )
        key = (await create_key(conn, name="bench", role=Role.GRID, scope=FEED)).key
        return {r["code"]: r["id"] for r in rows}, key
    finally:
        await conn.close()


def batches(
    codes: list[str], steps: int, size: int, offset: int
) -> Iterator[list[dict[str, object]]]:
    """Batches of ``size`` readings: every meter at consecutive quarter-hours."""
    batch: list[dict[str, object]] = []
    for step in range(steps):
        ts = (T0 + timedelta(minutes=15 * (step + offset))).isoformat()
        for code in codes:
            batch.append(
                {
                    "meter": code,
                    "ts": ts,
                    "energy": 1000.0 + step * 2.5,
                    "power": 10.0,
                    "voltage_a": 230.1,
                    "current_a": 15.2,
                    "power_factor": 0.93,
                }
            )
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def to_csv(batch: list[dict[str, object]]) -> bytes:
    lines = ["meter,ts,energy,power,voltage_a,current_a,power_factor"]
    lines += [
        f"{r['meter']},{r['ts']},{r['energy']},{r['power']},{r['voltage_a']},"
        f"{r['current_a']},{r['power_factor']}"
        for r in batch
    ]
    return ("\n".join(lines) + "\n").encode()


async def in_process_rate(
    settings: Settings, ids: dict[str, int], work: list[list[dict[str, object]]], clients: int
) -> float:
    readings = [
        [
            Reading(
                meter_id=ids[str(r["meter"])],
                ts=datetime.fromisoformat(str(r["ts"])),
                energy=float(str(r["energy"])),
                power=10.0,
                voltage_a=230.1,
                current_a=15.2,
                power_factor=0.93,
                source="bench",
            )
            for r in batch
        ]
        for batch in work
    ]
    queue = list(readings)
    async with IngestSink(settings, mark_dirty=True) as sink:

        async def produce() -> None:
            while queue:
                await sink.submit(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(produce() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return sum(len(b) for b in readings) / elapsed


async def http_rate(url: str, key: str, bodies: list[tuple[bytes, str]], clients: int) -> float:
    queue = list(bodies)
    total = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:

        async def produce() -> None:
            nonlocal total
            while queue:
                body, media = queue.pop()
                while True:
                    r = await http.post(
                        "/v1/readings",
                        content=body,
                        headers={"X-API-Key": key, "Content-Type": media},
                    )
                    if r.status_code != 503:
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                r.raise_for_status()
                total += r.json()["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(produce() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return total / elapsed


@contextmanager
def api_server(dsn: str, spool: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": dsn,
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(spool),
        "MHUB_LOG_LEVEL": "WARNING",
        # Both sides do the same work: mark dirty ranges, derive nothing meanwhile.
        "MHUB_INTERVAL_WORKER": "false",
        # Throughput, not policy: the per-key push quota is off.
        "MHUB_PUSH_RATE_PER_KEY": "0",
    }
    proc = subprocess.Popen([str(Path(sys.executable).with_name("meterhub")), "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/livez", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latencies(http: httpx.AsyncClient, key: str, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = await http.get(url, headers={"X-API-Key": key})
        response.raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def query_latencies(base: Settings, args: argparse.Namespace) -> dict[str, float]:
    start = "2026-01-01T00:00:00+08:00"
    end = (datetime.fromisoformat(start) + timedelta(days=args.days)).isoformat()
    async with bench_database(base, "meterhub_bench_queries") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            console.print(f"building {args.firms:,} firms x {args.days} days of intervals …")
            started = time.perf_counter()
            rows = await trend_data.build(conn, firms=args.firms, start=start, end=end)
            console.print(
                f"  {rows:,} interval rows and rollups in {time.perf_counter() - started:.0f} s"
            )
            key = (await create_key(conn, name="bench", role=Role.BUREAU, scope=None)).key
            firm_ids = [r["id"] for r in await conn.fetch("SELECT id FROM firms ORDER BY id")]
        finally:
            await conn.close()
        with tempfile.TemporaryDirectory() as tmp, api_server(dsn, Path(tmp)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                year = "start=2026-01-01&end=2027-01-01&granularity=day"
                firm_urls = [
                    f"/v1/trends/series?scope=firm&id={firm_ids[i * 37 % len(firm_ids)]}&{year}"
                    for i in range(args.samples)
                ]
                await _latencies(http, key, firm_urls[:3])  # warm up
                firm = await _latencies(http, key, firm_urls)
                city_url = (
                    f"/v1/trends/series?scope=city&breakdown=town&granularity=week"
                    f"&start=2026-01-01&end={end[:10]}"
                )
                await _latencies(http, key, [city_url])
                city = await _latencies(http, key, [city_url] * args.samples)
    result = {
        "firm_year_by_day_p50_ms": round(_percentile(firm, 0.5), 1),
        "firm_year_by_day_p95_ms": round(_percentile(firm, 0.95), 1),
        "city_by_town_by_week_p50_ms": round(_percentile(city, 0.5), 1),
        "city_by_town_by_week_p95_ms": round(_percentile(city, 0.95), 1),
    }
    console.print(
        f"(c) firm, year by day      p50 {result['firm_year_by_day_p50_ms']} ms, "
        f"p95 {result['firm_year_by_day_p95_ms']} ms  (target p95 < 100)"
    )
    console.print(
        f"(c) city by town by week   p50 {result['city_by_town_by_week_p50_ms']} ms, "
        f"p95 {result['city_by_town_by_week_p95_ms']} ms  (target p95 < 300)"
    )
    return result


async def run(args: argparse.Namespace) -> dict[str, float]:
    base = get_settings()
    async with bench_database(base, "meterhub_bench_api") as dsn:
        ids, key = await setup(dsn, args.meters)
        codes = list(ids)
        settings = base.model_copy(update={"database_url": SecretStr(dsn)})
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings.model_copy(update={"spool_dir": Path(tmp) / "spool"})
            inproc = await in_process_rate(
                settings, ids, list(batches(codes, args.steps, 5000, 0)), args.clients
            )
            console.print(f"(a) in-process submit {inproc:12,.0f} readings/s")
            with api_server(dsn, Path(tmp) / "api-spool") as url:
                json_bodies = [
                    (orjson.dumps(b), "application/json")
                    for b in batches(codes, args.steps, 5000, args.steps)
                ]
                json_rate = await http_rate(url, key, json_bodies, args.clients)
                console.print(f"(b) HTTP push, JSON   {json_rate:12,.0f} readings/s")
                csv_bodies = [
                    (to_csv(b), "text/csv")
                    for b in batches(codes, args.steps, 5000, 2 * args.steps)
                ]
                csv_rate = await http_rate(url, key, csv_bodies, args.clients)
                console.print(f"(b) HTTP push, CSV    {csv_rate:12,.0f} readings/s")
    push = (json_rate + csv_rate) / 2
    result: dict[str, float] = {
        "push_rows_per_s": round(push),
        "push_json_rows_per_s": round(json_rate),
        "push_csv_rows_per_s": round(csv_rate),
        "in_process_rows_per_s": round(inproc),
        "push_ratio": round(push / inproc, 3),
    }
    if not args.skip_queries:
        result |= await query_latencies(base, args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=200, help="timestamps per meter and phase")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--firms", type=int, default=2000, help="firms in the query database")
    parser.add_argument("--days", type=int, default=90, help="days of 15-minute intervals")
    parser.add_argument("--samples", type=int, default=50, help="requests per query kind")
    parser.add_argument("--skip-queries", action="store_true", help="only the push phase")
    args = parser.parse_args()
    if args.quick:
        args.meters, args.steps, args.firms, args.days, args.samples = 500, 20, 200, 30, 20
    result = asyncio.run(run(args))
    console.print(f"push ratio (b)/(a) = {result['push_ratio']:.2f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

"""API benchmark: sustained HTTP push throughput against in-process `submit`, in one run,
and trend-query latency over a year of rollups.

    .venv/bin/python bench/api.py [--quick] [--json] [--cpus 1]

(a) in-process: `IngestSink.submit` of batches of 5,000 readings from several producers,
once before (b) and once after it (the baseline is the mean, so running first or last gives
neither side an edge);
(b) HTTP: `meterhub serve` in its own process, one client per grid key POSTing the same
kind of batches to /v1/readings as JSON and as CSV (`bench._push`). The ingest process of
both sides (this process for (a), the server for (b)) runs on the same CPUs (``--cpus``,
default the last one), the HTTP clients on the others (`bench._pinning`). Prints
readings/s of each, which ingest path (fast or merge) the readings took on each side, the
push quota that applied, and the ratio (b)/(a) (target >= 0.7). (c) trend queries over
HTTP on a database of the rollups of FIRMS firms x DAYS days of 15-minute intervals (2,000
x 365 by default, `bench._trend_data`): p50/p95 of a firm's year by day (target p95 < 20
ms) and of the city by town by week over the whole range, the dashboard's consumption by
town (target p95 < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from pydantic import SecretStr
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _push as push
from bench import _trend_data as trend_data
from bench._db import bench_database
from bench._pinning import CpuPlan, pinned, plan
from bench._soak_figures import percentile
from meterhub.runtime import tune_gc
from meterhub.settings import Settings, get_settings
from registry.keys import Role, create_key

console = Console(stderr=True)
Result = dict[str, float | str]


async def _latencies(http: httpx.AsyncClient, key: str, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = await http.get(url, headers={"X-API-Key": key})
        response.raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def query_latencies(args: argparse.Namespace) -> Result:
    start = "2026-01-01T00:00:00+08:00"
    end = (datetime.fromisoformat(start) + timedelta(days=args.days)).isoformat()
    async with bench_database(get_settings(), "meterhub_bench_queries") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            console.print(f"building the rollups of {args.firms:,} firms x {args.days} days …")
            started = time.perf_counter()
            intervals = await trend_data.build(conn, firms=args.firms, start=start, end=end)
            console.print(
                f"  rollups of {intervals:,} 15-minute intervals in "
                f"{time.perf_counter() - started:.0f} s; {await _sizes(conn)}"
            )
            key = (await create_key(conn, name="bench", role=Role.BUREAU, scope=None)).key
            firm_ids = [r["id"] for r in await conn.fetch("SELECT id FROM firms ORDER BY id")]
        finally:
            await conn.close()
        with tempfile.TemporaryDirectory() as tmp, push.api_server(dsn, Path(tmp)) as url:
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
    result: Result = {
        "firm_year_by_day_p50_ms": percentile(firm, 0.5, digits=1),
        "firm_year_by_day_p95_ms": percentile(firm, 0.95, digits=1),
        "city_by_town_by_week_p50_ms": percentile(city, 0.5, digits=1),
        "city_by_town_by_week_p95_ms": percentile(city, 0.95, digits=1),
    }
    console.print(
        f"(c) firm, year by day      p50 {result['firm_year_by_day_p50_ms']} ms, "
        f"p95 {result['firm_year_by_day_p95_ms']} ms  (target p95 < 20; {args.samples} "
        "firms, one request at a time, HTTP round trip included)"
    )
    console.print(
        f"(c) city by town by week   p50 {result['city_by_town_by_week_p50_ms']} ms, "
        f"p95 {result['city_by_town_by_week_p95_ms']} ms  (target p95 < 100; "
        f"{args.days} days, {len(trend_data.TOWNS)} towns)"
    )
    return result


async def _sizes(conn: asyncpg.Connection) -> str:
    rows = await conn.fetch(
        "SELECT c.relname, c.reltuples::bigint AS n FROM pg_class c "
        "WHERE c.relname IN ('firm_rollups', 'town_rollups') ORDER BY 1"
    )
    return ", ".join(f"{r['relname']} {r['n']:,} rows" for r in rows)


async def push_phase(args: argparse.Namespace, cpus: CpuPlan) -> Result:
    base = get_settings()
    async with bench_database(base, "meterhub_bench_api") as dsn:
        ids, keys = await push.setup(dsn, meters=args.meters, keys=args.clients)
        codes = list(ids)
        settings = base.model_copy(update={"database_url": SecretStr(dsn)})
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings.model_copy(update={"spool_dir": Path(tmp) / "spool"})
            tune_gc()  # as `meterhub serve` does at start-up
            first, first_paths = await _in_process(settings, ids, codes, args, cpus, offset=0)
            server = push.api_server(dsn, Path(tmp) / "api-spool")
            # The server starts on the ingest CPUs (it inherits them), the clients move off.
            with pinned(cpus.measured), server as url, pinned(cpus.load):
                runs, paths = await _http_phases(url, keys, codes, args)
            # Again after the HTTP side, on a fuller table: the baseline is the mean of both,
            # so neither side gains from running first or last.
            last, last_paths = await _in_process(settings, ids, codes, args, cpus, offset=3)
    inproc, inproc_paths = (first + last) / 2, first_paths + last_paths
    json_run, csv_run = runs
    rate = (json_run.rate + csv_run.rate) / 2
    refused, busy = json_run.refused + csv_run.refused, json_run.busy + csv_run.busy
    console.print(f"(b) HTTP push, JSON   {json_run.rate:12,.0f} readings/s")
    console.print(f"(b) HTTP push, CSV    {csv_run.rate:12,.0f} readings/s  ({paths.describe()})")
    console.print(f"    CPUs: {cpus.describe('ingest process on both sides', 'HTTP clients')}")
    console.print(
        f"    push quota: {base.push_rate_per_key:,.0f} readings/s per key, bursts of "
        f"{base.push_burst:,} (MHUB_PUSH_RATE_PER_KEY / MHUB_PUSH_BURST as configured), "
        f"{len(keys)} grid keys (one feed per client): {refused} batches refused (429) and "
        f"sent again, {busy} told busy (503)"
    )
    return {
        "push_rows_per_s": round(rate),
        "push_json_rows_per_s": round(json_run.rate),
        "push_csv_rows_per_s": round(csv_run.rate),
        "in_process_rows_per_s": round(inproc),
        "in_process_first_rows_per_s": round(first),
        "in_process_last_rows_per_s": round(last),
        "push_ratio": round(rate / inproc, 3),
        "in_process_fast_path_share": round(inproc_paths.fast_share, 3),
        "push_fast_path_share": round(paths.fast_share, 3),
        "push_quota_per_key": base.push_rate_per_key,
        "push_quota_refusals": refused,
        "ingest_cpus": ",".join(str(c) for c in sorted(cpus.measured)),
    }


async def _in_process(
    settings: Settings,
    ids: dict[str, int],
    codes: list[str],
    args: argparse.Namespace,
    cpus: CpuPlan,
    *,
    offset: int,
) -> tuple[float, push.Paths]:
    """(a) at ``offset`` phases of ``args.steps`` quarter-hours (fresh timestamps)."""
    work = list(push.batches(codes, args.steps, 5000, offset * args.steps))
    with pinned(cpus.measured):
        rate, paths = await push.in_process_rate(settings, ids, work, args.clients)
    console.print(f"(a) in-process submit {rate:12,.0f} readings/s  ({paths.describe()})")
    return rate, paths


async def _http_phases(
    url: str, keys: list[str], codes: list[str], args: argparse.Namespace
) -> tuple[tuple[push.HttpRun, push.HttpRun], push.Paths]:
    before = await push.server_paths(url)
    json_bodies = [
        (orjson.dumps(b), "application/json")
        for b in push.batches(codes, args.steps, 5000, args.steps)
    ]
    json_run = await push.http_rate(url, keys, json_bodies)
    csv_bodies = [
        (push.to_csv(b), "text/csv") for b in push.batches(codes, args.steps, 5000, 2 * args.steps)
    ]
    csv_run = await push.http_rate(url, keys, csv_bodies)
    return (json_run, csv_run), await push.server_paths(url) - before


async def run(args: argparse.Namespace) -> Result:
    result = {} if args.skip_push else await push_phase(args, plan(args.cpus))
    if not args.skip_queries:
        result |= await query_latencies(args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=200, help="timestamps per meter and phase")
    parser.add_argument("--clients", type=int, default=4, help="HTTP clients and producers")
    parser.add_argument("--cpus", help="CPUs of the ingest process, e.g. 1 or 2,3")
    parser.add_argument("--firms", type=int, default=2000, help="firms in the query database")
    parser.add_argument("--days", type=int, default=365, help="days of 15-minute intervals")
    parser.add_argument("--samples", type=int, default=200, help="requests per query kind")
    parser.add_argument("--skip-queries", action="store_true", help="only the push phase")
    parser.add_argument("--skip-push", action="store_true", help="only the query phase")
    args = parser.parse_args()
    if args.quick:
        args.meters, args.steps, args.firms, args.days, args.samples = 500, 20, 200, 30, 20
    result = asyncio.run(run(args))
    if "push_ratio" in result:
        console.print(f"push ratio (b)/(a) = {result['push_ratio']:.2f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

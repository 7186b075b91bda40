"""Ingest benchmark: the pipeline end to end against `psql \\copy`, in one run.

    .venv/bin/python bench/ingest.py [--quick] [--json] [--meters N] [--steps N]

(a) `psql \\copy` of the distinct valid rows (CSV) into an identical empty hypertable: the
server's own limit. (b) `IngestSink.submit` -> committed, for the full workload with 1 %
duplicates and 0.1 % invalid readings, validation, in-batch de-duplication, staging COPY and
the ON CONFLICT merge. (c) the same with interval derivation and rollups running (when the
interval worker is available). Prints readings/s, the ratio (b)/(a) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from ingest.interval_worker import run_interval_worker
from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, READING_COLUMNS, Reading
from meterhub.runtime import tune_gc
from meterhub.settings import Settings, get_settings

console = Console(stderr=True)
T0 = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)


@dataclass
class Workload:
    chunks: list[list[Reading]]
    valid_rows: list[Reading]
    total: int


def make_workload(
    meter_ids: list[int], steps: int, *, chunk: int, seed: int = 7, shuffle: bool = False
) -> Workload:
    """Full readings for every meter at every quarter-hour, with 1 % exact duplicates and
    0.1 % invalid readings mixed in, cut into producer chunks.

    Arrival order is that of a collection system: cycle after cycle, meters in any order
    within a cycle, 1 % of readings one to four cycles late (out of order), and each
    duplicate (a retransmission) re-sent one to four cycles after its original. ``shuffle``
    instead mixes the whole stream at random: the worst case, in which most readings are
    older than their meter's newest one and take the merge path.
    """
    rng = random.Random(seed)
    valid: list[Reading] = []
    for step in range(steps):
        ts = T0 + timedelta(minutes=15 * step)
        for m in meter_ids:
            energy = 1000.0 + step * 2.5 + m % 97
            valid.append(
                Reading(
                    meter_id=m,
                    ts=ts,
                    energy=energy,
                    energy_sharp=energy * 0.1,
                    energy_peak=energy * 0.4,
                    energy_flat=energy * 0.3,
                    energy_valley=energy * 0.2,
                    power=10.0 + rng.random(),
                    voltage_a=230.1,
                    voltage_b=229.8,
                    voltage_c=230.4,
                    current_a=15.2,
                    current_b=14.9,
                    current_c=15.1,
                    power_factor=0.93,
                    source="bench",
                )
            )
    extra = [valid[rng.randrange(len(valid))] for _ in range(len(valid) // 100)]
    invalid = [
        Reading(
            meter_id=meter_ids[0],
            ts=T0 + timedelta(minutes=15 * i, seconds=1),
            energy=-1.0,
            source="bench",
        )
        for i in range(len(valid) // 1000)
    ]
    if shuffle:
        stream = valid + extra + invalid
        rng.shuffle(stream)
    else:
        n = len(meter_ids)
        # Meters answer in any order within a cycle; 1 % of readings arrive 1-4 cycles late.
        keyed = [
            (i // n + (1 + 3 * rng.random() if rng.random() < 0.01 else rng.random()), r)
            for i, r in enumerate(valid)
        ]
        for reading in extra + invalid:  # resent one to four cycles after the original
            cycle = (reading.ts - T0).total_seconds() // 900
            keyed.append((cycle + 1 + 3 * rng.random(), reading))
        keyed.sort(key=lambda pair: pair[0])
        stream = [r for _, r in keyed]
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    return Workload(chunks, valid, len(stream))


async def create_meters(dsn: str, count: int, *, prefix: str = "B") -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        firm = await conn.fetchval(
            "INSERT INTO firms (credit_code, name, industry, town) "
            "VALUES ($1, 'bench', 'C17', '苏溪') RETURNING id",
            "91350100M000100Y43" if prefix == "B" else "91330782MA0000005K",
        )
        rows = await conn.fetch(
            "INSERT INTO meters (firm_id, code, utility, protocol, installed_at) "
            "SELECT $1, $3 || g, 'electricity', 'grid-feed', '2025-01-01' "
            "FROM generate_series(1, $2) g RETURNING id",
            firm,
            count,
            prefix,
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def psql_copy_rate(dsn: str, rows: list[Reading], workdir: Path) -> float:
    """Rows/s of `psql \\copy` into an empty hypertable shaped like `readings`."""
    path = workdir / "rows.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        for r in rows:
            writer.writerow([_csv_value(getattr(r, c)) for c in READING_COLUMNS])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE readings_copy (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES)"
        )
        await conn.execute(
            "SELECT create_hypertable('readings_copy', 'ts', "
            "chunk_time_interval => interval '1 day', create_default_indexes => false)"
        )
    finally:
        await conn.close()
    command = f"\\copy readings_copy ({', '.join(READING_COLUMNS)}) FROM '{path}' CSV"
    started = time.perf_counter()
    await asyncio.to_thread(
        subprocess.run, ["psql", dsn, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True
    )
    elapsed = time.perf_counter() - started
    return len(rows) / elapsed


async def pipeline_rate(settings: Settings, work: Workload, *, producers: int = 4) -> float:
    """Readings/s from the first `submit` until every reading is committed."""
    queue: asyncio.Queue[list[Reading]] = asyncio.Queue()
    for chunk in work.chunks:
        queue.put_nowait(chunk)
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("pipeline", total=work.total)
        async with IngestSink(settings, mark_dirty=False) as sink:

            async def produce() -> None:
                while not queue.empty():
                    chunk = queue.get_nowait()
                    result = await sink.submit(chunk)
                    counts["accepted"] += result.accepted
                    counts["duplicates"] += result.duplicates
                    counts["rejected"] += len(result.rejected)
                    progress.advance(task, len(chunk))

            started = time.perf_counter()
            await asyncio.gather(*(produce() for _ in range(producers)))
            elapsed = time.perf_counter() - started
    expected = len(work.valid_rows)
    if counts["accepted"] != expected:
        raise SystemExit(f"pipeline stored {counts['accepted']} readings, expected {expected}")
    return work.total / elapsed


async def derived_rate(settings: Settings, work: Workload, *, producers: int = 4) -> float:
    """Readings/s from the first `submit` until every reading is committed **and** its
    intervals and rollups are derived (the interval worker running alongside)."""
    queue: asyncio.Queue[list[Reading]] = asyncio.Queue()
    for chunk in work.chunks:
        queue.put_nowait(chunk)
    stop = asyncio.Event()
    started = time.perf_counter()
    worker = asyncio.create_task(run_interval_worker(settings, idle=0.2, stop=stop))
    async with IngestSink(settings, mark_dirty=True) as sink:

        async def produce() -> None:
            while not queue.empty():
                await sink.submit(queue.get_nowait())

        await asyncio.gather(*(produce() for _ in range(producers)))
    conn = await asyncpg.connect(settings.dsn())
    try:
        while await conn.fetchval("SELECT count(*) FROM interval_dirty"):  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # polling the database: no event to wait on
    finally:
        await conn.close()
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    return work.total / elapsed


async def run(args: argparse.Namespace) -> dict[str, float]:
    base = get_settings()
    async with bench_database(base, "meterhub_bench_ingest") as dsn:
        settings = base.model_copy(update={"database_url": SecretStr(dsn)})
        if args.batch_size:
            settings = settings.model_copy(update={"batch_size": args.batch_size})
        meters = await create_meters(dsn, args.meters)
        console.print(f"generating {args.meters} meters x {args.steps} timestamps …")
        work = make_workload(meters, args.steps, chunk=args.chunk, shuffle=args.shuffle)
        # The pre-generated workload is the producers' input, not pipeline state: keep the
        # collector from re-scanning its millions of objects during the measurement.
        tune_gc()  # as the services do at start-up; freezes the workload too
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings.model_copy(update={"spool_dir": Path(tmp) / "spool"})
            copy_rate = await psql_copy_rate(dsn, work.valid_rows, Path(tmp))
            console.print(f"(a) psql \\copy      {copy_rate:12,.0f} rows/s")
            rate = await pipeline_rate(settings, work)
            console.print(
                f"(b) pipeline        {rate:12,.0f} readings/s  "
                f"({work.total:,} submitted, batch {settings.batch_size:,}, "
                f"{settings.writers} writers)"
            )
            derived = 0.0
            if not args.skip_derived:
                more = await create_meters(dsn, args.meters, prefix="D")
                work = make_workload(more, args.steps, chunk=args.chunk, shuffle=args.shuffle)
                derived = await derived_rate(settings, work)
                console.print(
                    f"(c) with intervals  {derived:12,.0f} readings/s  "
                    "(committed, 15-min intervals and rollups derived)"
                )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "copy_rows_per_s": round(copy_rate),
        "pipeline_rows_per_s": round(rate),
        "ratio": round(rate / copy_rate, 3),
        "peak_rss_mb": round(peak_rss, 1),
        "with_intervals_rows_per_s": round(derived),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (200 x 100)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=5000, help="readings per submit call")
    parser.add_argument("--batch-size", type=int, default=0, help="override MHUB_BATCH_SIZE")
    parser.add_argument("--skip-derived", action="store_true", help="skip phase (c)")
    parser.add_argument(
        "--shuffle", action="store_true", help="arrival order fully random (the worst case)"
    )
    args = parser.parse_args()
    if args.quick:
        args.meters, args.steps = 200, 100
    result = asyncio.run(run(args))
    console.print(
        f"ratio (b)/(a) = {result['ratio']:.2f}   peak RSS {result['peak_rss_mb']} MB "
        "(includes the pre-generated workload)"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

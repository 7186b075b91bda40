"""Ingest benchmark: the pipeline end to end against COPY, and derivation beside it.

    .venv/bin/python bench/ingest.py [--quick] [--json] [--meters N] [--steps N]

(a) `psql \\copy` of the distinct valid rows (CSV, one stream: what a user does by hand) and
(a') binary COPY of the same rows over as many connections as the pipeline has writers (the
server's physical limit), each into an identical empty hypertable. (b) `IngestSink.submit`
-> committed, in the production sink configuration (it marks dirty ranges for derivation),
for the full workload with 1 % duplicates and 0.1 % invalid readings: validation, in-batch
de-duplication, COPY and the ON CONFLICT merge. (c) the same with the interval worker
deriving intervals, events, rollups and features alongside, until the backlog is empty: in a
process of its own, as `meterhub derive` runs in every deployment (`bench._deriver`).
(d) a sustained run at a fixed rate: the backlog over time and the committed -> queryable
latency of every dirty mark (its batch's commit to the pass that made its firm's rollups
include it). Rates count valid distinct readings only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
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
import numpy as np
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from bench._deriver import deriver_process
from bench._soak_figures import percentile
from ingest import pgcopy
from ingest.columns import from_readings
from ingest.interval_grid import floor_to_grid
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


async def _empty_copy_table(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES)"
        )
        await conn.execute(
            f"SELECT create_hypertable('{name}', 'ts', "
            "chunk_time_interval => interval '1 day', create_default_indexes => false)"
        )
    finally:
        await conn.close()


async def psql_copy_rate(dsn: str, rows: list[Reading], workdir: Path) -> float:
    """Rows/s of `psql \\copy` (CSV, one stream) into an empty hypertable like `readings`."""
    path = workdir / "rows.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        for r in rows:
            writer.writerow([_csv_value(getattr(r, c)) for c in READING_COLUMNS])
    await _empty_copy_table(dsn, "readings_copy")
    command = f"\\copy readings_copy ({', '.join(READING_COLUMNS)}) FROM '{path}' CSV"
    started = time.perf_counter()
    await asyncio.to_thread(
        subprocess.run, ["psql", dsn, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True
    )
    elapsed = time.perf_counter() - started
    return len(rows) / elapsed


async def binary_copy_rate(dsn: str, rows: list[Reading], *, connections: int) -> float:
    """Rows/s of binary COPY over ``connections`` parallel connections (encoded beforehand)
    into an empty hypertable like `readings`."""
    await _empty_copy_table(dsn, "readings_bcopy")
    columns = from_readings(rows)
    parts = np.array_split(np.arange(len(rows)), connections)
    payloads = [memoryview(pgcopy.encode(columns.copy_columns(part))) for part in parts]
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:

        async def copy(conn: asyncpg.Connection, data: memoryview) -> None:
            await conn.copy_to_table(
                "readings_bcopy",
                source=data,  # type: ignore[arg-type]
                columns=list(READING_COLUMNS),
                format="binary",
            )

        started = time.perf_counter()
        await asyncio.gather(*(copy(c, d) for c, d in zip(conns, payloads, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()
    return len(rows) / elapsed


async def pipeline_rate(settings: Settings, work: Workload, *, producers: int = 4) -> float:
    """Readings/s from the first `submit` until every reading is committed."""
    queue: asyncio.Queue[list[Reading]] = asyncio.Queue()
    for chunk in work.chunks:
        queue.put_nowait(chunk)
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("pipeline", total=work.total)
        async with IngestSink(settings) as sink:

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
    return expected / elapsed


async def _backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(sum(ranges), 0) FROM interval_dirty"))


async def derived_rate(settings: Settings, work: Workload, *, producers: int = 4) -> float:
    """Valid readings/s from the first `submit` until every reading is committed **and**
    its intervals, rollups and features are derived (the interval worker alongside)."""
    queue: asyncio.Queue[list[Reading]] = asyncio.Queue()
    for chunk in work.chunks:
        queue.put_nowait(chunk)
    async with deriver_process(settings.dsn()) as deriver:
        started = time.perf_counter()
        async with IngestSink(settings) as sink:

            async def produce() -> None:
                while not queue.empty():
                    await sink.submit(queue.get_nowait())

            await asyncio.gather(*(produce() for _ in range(producers)))
        conn = await asyncpg.connect(settings.dsn())
        try:
            while await _backlog(conn):  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # polling the database: no event to wait on
        finally:
            await conn.close()
        elapsed = time.perf_counter() - started
    console.print(f"    the deriver process: {deriver.passes} passes, {deriver.cpu_seconds} s CPU")
    return len(work.valid_rows) / elapsed


@dataclass
class Sustained:
    rate: float
    seconds: float
    backlog_max: int
    backlog_last: int
    queryable_p99_s: float
    queryable_max_s: float


async def sustained_run(
    settings: Settings, meter_ids: list[int], *, rate: float, seconds: float
) -> Sustained:
    """Readings of every meter, cycle after cycle, at ``rate`` readings/s for ``seconds``,
    with the worker deriving; samples the backlog and every mark's latency."""
    async with deriver_process(settings.dsn()) as deriver:
        backlog, last = await _sustain(settings, meter_ids, rate=rate, seconds=seconds)
    lat = deriver.latencies
    p99 = percentile(lat, 0.99, digits=None) if lat else 0.0
    return Sustained(rate, seconds, max(backlog, default=0), last, p99, max(lat, default=0))


async def _sustain(
    settings: Settings, meter_ids: list[int], *, rate: float, seconds: float
) -> tuple[list[int], int]:
    """The backlog after each cycle sent, and what is left a minute after the last."""
    conn = await asyncpg.connect(settings.dsn())
    backlog: list[int] = []
    # After (c)'s data, and far enough back that the last cycle is not in the future.
    cycles = math.ceil(rate * seconds / len(meter_ids)) + 1
    t_start = floor_to_grid(datetime.now(LOCAL_TZ) - timedelta(minutes=15 * cycles, days=1))
    chunk = 2_000
    cycle_readings = len(meter_ids)
    try:
        async with IngestSink(settings) as sink:
            started = time.perf_counter()
            sent = 0
            step = 0
            while time.perf_counter() - started < seconds:
                ts = t_start + timedelta(minutes=15 * step)
                cycle = [
                    Reading(meter_id=m, ts=ts, energy=1000.0 + step * 2.5 + m % 97, source="bench")
                    for m in meter_ids
                ]
                for i in range(0, cycle_readings, chunk):
                    result = await sink.submit(cycle[i : i + chunk])
                    if result.accepted != len(cycle[i : i + chunk]):
                        raise SystemExit(f"sustained run: {result} for a chunk of {chunk}")
                    sent += len(cycle[i : i + chunk])
                    ahead = sent / rate - (time.perf_counter() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                step += 1
                backlog.append(await _backlog(conn))
        deadline = time.perf_counter() + 60
        while await _backlog(conn) and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # polling the database: no event to wait on
        last = await _backlog(conn)
    finally:
        await conn.close()
    return backlog, last


async def _clear_backlog(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM interval_dirty")
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, float | None]:
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
            console.print(f"(a) psql \\copy      {copy_rate:12,.0f} rows/s (CSV, one stream)")
            bcopy_rate = await binary_copy_rate(dsn, work.valid_rows, connections=settings.writers)
            console.print(
                f"(a') binary COPY    {bcopy_rate:12,.0f} rows/s ({settings.writers} connections)"
            )
            rate = await pipeline_rate(settings, work)
            console.print(
                f"(b) pipeline        {rate:12,.0f} readings/s  "
                f"({len(work.valid_rows):,} valid distinct of {work.total:,} submitted, batch "
                f"{settings.batch_size:,}, {settings.writers} writers, marking dirty ranges)"
            )
            await _clear_backlog(dsn)  # (b)'s marks are not (c)'s work
            derived = 0.0
            sustained: Sustained | None = None
            if not args.skip_derived:
                more = await create_meters(dsn, args.meters, prefix="D")
                work = make_workload(more, args.steps, chunk=args.chunk, shuffle=args.shuffle)
                derived = await derived_rate(settings, work)
                console.print(
                    f"(c) with intervals  {derived:12,.0f} readings/s  "
                    f"(committed, intervals, rollups and features derived): "
                    f"{derived / rate:.2f} x (b)"
                )
                pace = args.sustained_rate or rate / 2
                sustained = await sustained_run(
                    settings, more, rate=pace, seconds=args.sustained_seconds
                )
                console.print(
                    f"(d) sustained       {pace:12,.0f} readings/s for "
                    f"{args.sustained_seconds:.0f} s: "
                    f"backlog at most {sustained.backlog_max} ranges, {sustained.backlog_last} "
                    f"left after; committed -> queryable p99 {sustained.queryable_p99_s:.2f} s, "
                    f"max {sustained.queryable_max_s:.2f} s"
                )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "copy_rows_per_s": round(copy_rate),
        "pipeline_rows_per_s": round(rate),
        "ratio": round(rate / copy_rate, 3),
        "peak_rss_mb": round(peak_rss, 1),
        "with_intervals_rows_per_s": round(derived),
        "binary_copy_rows_per_s": round(bcopy_rate),
        "ratio_binary_copy": round(rate / bcopy_rate, 3),
        "with_intervals_ratio": round(derived / rate, 3),
        "queryable_p99_s": round(sustained.queryable_p99_s, 3) if sustained else None,
        "sustained_backlog_max": sustained.backlog_max if sustained else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (200 x 100)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=5000, help="readings per submit call")
    parser.add_argument("--batch-size", type=int, default=0, help="override MHUB_BATCH_SIZE")
    parser.add_argument("--skip-derived", action="store_true", help="skip phases (c) and (d)")
    parser.add_argument(
        "--sustained-rate", type=float, default=0.0, help="(d) readings/s; default (b) / 2"
    )
    parser.add_argument("--sustained-seconds", type=float, default=30.0, help="(d) duration")
    parser.add_argument(
        "--shuffle", action="store_true", help="arrival order fully random (the worst case)"
    )
    args = parser.parse_args()
    if args.quick:
        args.meters, args.steps, args.sustained_seconds = 200, 100, 10.0
    result = asyncio.run(run(args))
    console.print(
        f"ratio (b)/(a) = {result['ratio']:.2f}   (b)/(a') = {result['ratio_binary_copy']:.2f}"
        f"   peak RSS {result['peak_rss_mb']} MB "
        "(includes the pre-generated workload)"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Backfill benchmark: a year of quarter-hour history for a 300-firm city through the grid
path, until it is queryable.

What it does, in the configuration users run: a fresh database; the city of
`meterhub simulate city --firms N` registered with `meterhub simulate register`; one CSV
of the grid company's export shape (meter code, time, total active energy) for every
electricity meter at every quarter-hour of the span; then, timed, `meterhub import readings
FILE` with one `meterhub derive` process beside it (the derivation service of
`deploy/docker-compose.yml`), until the import has ended **and** the derivation backlog is
empty: every reading stored, its intervals, rollups and features derived. The baseline,
run on the same file first: `psql \\copy` of it into a bare table (what a user does by
hand, no validation, no intervals). Prints both, the ratio and the target (< 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import numpy as np
import polars as pl
from pydantic import SecretStr
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from meterhub.reading import LOCAL_TZ
from meterhub.settings import get_settings

console = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[1]
MHUB = str(ROOT / ".venv" / "bin" / "meterhub")
START = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
TARGET_S = 300.0


def _env(dsn: str) -> dict[str, str]:
    return {**os.environ, "MHUB_DATABASE_URL": dsn, "MHUB_LOG_LEVEL": "WARNING"}


def register_city(dsn: str, firms: int, workdir: Path) -> None:
    city = workdir / "city.json"
    start = START.isoformat()
    for args in (
        ["simulate", "city", "--firms", str(firms), "--seed", "7", "--out", str(city)],
        ["simulate", "register", str(city), "--as-of", start, "--no-mqtt-users"],
    ):
        if args[1] == "city":
            args += ["--start", start]
        subprocess.run([MHUB, *args], env=_env(dsn), check=True, capture_output=True)


async def electricity_meters(dsn: str) -> dict[str, float]:
    """Code -> maximum power (kW on the register's side) of every electricity meter."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT code, max_power::float8 AS max_power FROM meters "
            "WHERE utility = 'electricity' AND removed_at IS NULL ORDER BY id"
        )
        return {r["code"]: r["max_power"] for r in rows}
    finally:
        await conn.close()


def write_history(meters: dict[str, float], days: int, path: Path) -> int:
    """Every meter at every quarter-hour: a register rising with a daily load shape (work
    by day at 20-80 % of the meter's maximum power, a third of that at night), one file,
    time by time (as an export cut by day is)."""
    codes = list(meters)
    rng = np.random.default_rng(7)
    steps = days * 96
    hour = (np.arange(steps) % 96) / 4.0
    shape = 0.3 + 0.7 * ((hour >= 8) & (hour < 18))
    stamps = [(START + timedelta(minutes=15 * k)).isoformat() for k in range(steps)]
    load = rng.uniform(0.2, 0.8, len(codes))
    scale = np.array([meters[c] for c in codes]) * 0.25 * load  # kWh per working quarter
    frames = []
    for i, code in enumerate(codes):
        energy = 1000.0 + np.cumsum(scale[i] * shape * rng.uniform(0.9, 1.1, steps))
        energy = np.round(energy, 2)
        frames.append(
            pl.DataFrame(
                {"meter": [code] * steps, "ts": stamps, "energy": energy},
            )
        )
    table = pl.concat(frames).with_columns(pl.col("ts").cast(pl.Categorical))
    order = table.with_row_index("i").sort(["ts", "i"], maintain_order=True).drop("i")
    order.with_columns(pl.col("ts").cast(pl.Utf8)).write_csv(path)
    return steps * len(codes)


def psql_copy_seconds(dsn: str, path: Path) -> float:
    parts = urlsplit(dsn)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    conn = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    conn += ["-U", parts.username or "", "-d", parts.path.lstrip("/")]
    conn += ["-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(
        ["psql", *conn, "-c", "CREATE TABLE bench_raw (meter text, ts timestamptz, energy float8)"],
        env=env,
        check=True,
    )
    started = time.perf_counter()
    subprocess.run(
        ["psql", *conn, "-c", f"\\copy bench_raw FROM '{path}' WITH (FORMAT csv, HEADER)"],
        env=env,
        check=True,
    )
    elapsed = time.perf_counter() - started
    subprocess.run(["psql", *conn, "-c", "DROP TABLE bench_raw"], env=env, check=True)
    return elapsed


async def _count(dsn: str, query: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def backfill_seconds(dsn: str, path: Path) -> tuple[float, float]:
    """Seconds until the import ended, and until the backlog was empty after it."""
    env = _env(dsn)
    started = time.perf_counter()
    derive = await asyncio.create_subprocess_exec(MHUB, "derive", "--idle", "0.2", env=env)
    try:
        imported = await asyncio.create_subprocess_exec(
            MHUB, "import", "readings", str(path), env=env
        )
        if await imported.wait() != 0:
            raise SystemExit("meterhub import readings failed")
        import_s = time.perf_counter() - started
        while await _count(dsn, "SELECT count(*) FROM interval_dirty"):
            if derive.returncode is not None:
                raise SystemExit("meterhub derive exited")
            await asyncio.sleep(0.2)
        return import_s, time.perf_counter() - started
    finally:
        derive.terminate()
        await asyncio.wait_for(derive.wait(), 30)


async def run(args: argparse.Namespace) -> dict[str, float | int]:
    base = get_settings()
    async with bench_database(base, "meterhub_bench_backfill") as dsn:
        settings = base.model_copy(update={"database_url": SecretStr(dsn)})
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            register_city(settings.dsn(), args.firms, workdir)
            codes = await electricity_meters(dsn)
            path = workdir / "history.csv"
            console.print(f"writing {args.days} days x {len(codes)} electricity meters …")
            rows = write_history(codes, args.days, path)
            size_mb = path.stat().st_size / 1e6
            console.print(f"{rows:,} readings, {size_mb:,.0f} MB of CSV")
            copy_s = psql_copy_seconds(dsn, path)
            console.print(f"baseline: psql \\copy into a bare table  {copy_s:8.1f} s")
            import_s, queryable_s = await backfill_seconds(dsn, path)
        stored = await _count(dsn, "SELECT count(*) FROM readings")
        intervals = await _count(dsn, "SELECT count(*) FROM intervals")
        if stored != rows or intervals != rows - len(codes):
            raise SystemExit(f"stored {stored:,} readings and {intervals:,} intervals of {rows:,}")
    mark = "✔" if queryable_s < TARGET_S else "✘"
    console.print(
        f"backfill: import ended after {import_s:.1f} s; every interval, rollup and feature "
        f"derived after {queryable_s:.1f} s ({rows / queryable_s:,.0f} readings/s); "
        f"{queryable_s / copy_s:.1f} x the bare \\copy; target < {TARGET_S:.0f} s {mark}"
    )
    return {
        "firms": args.firms,
        "meters": len(codes),
        "readings": rows,
        "psql_copy_s": round(copy_s, 1),
        "import_s": round(import_s, 1),
        "backfill_queryable_s": round(queryable_s, 1),
        "backfill_readings_per_s": round(rows / queryable_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (20 firms, 14 days)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--firms", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    if args.quick:
        args.firms, args.days = 20, 14
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

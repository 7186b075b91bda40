"""The weekly analytics at city scale: every rule for one week plus the year's per-mu
evaluation and carbon grades, on 2,000 and 20,000 firms; and the week's notice.

    .venv/bin/python bench/alerts.py [--quick] [--json]

Each size gets a throwaway database with, per firm, 63 days of daily features (24 hourly
energies each: what the interval worker keeps from 15-minute data), 24 months of monthly
rollups (with interval counts) and output figures, list memberships and projects; some
firms stop, cut back or surge in the judged week. Timed, in the calls the commands
make: `alerts.weekly.run_week` (`meterhub alerts run`: read in SQL, rules in polars, hits
and findings stored; after one warm-up run of the same week, the split between SQL and
polars printed), then `alerts.yearly.run_year` (`meterhub alerts evaluate`) for 2025, then
`alerts.notices.generate` (`meterhub notices generate`: cases opened, content built,
revision stored) and its HTML, XLSX and JSON exports read back and rendered. Targets:
analytics (week + year) under 1 s for 2,000 firms and under 10 s for 20,000, the notice
with its exports under 1 s for 2,000 firms, peak RSS under 1 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from rich.console import Console

# Run as a script, bench/ is first on sys.path and this file would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts import rulebook
from alerts.annual import Period
from alerts.notices import config as notice_config
from alerts.notices import exports, reading
from alerts.notices.generate import generate
from alerts.weekly import RunSummary, run_week
from alerts.yearly import run_year
from bench._db import bench_database
from bench._trend_data import _FIRMS, _METERS, INDUSTRIES, TOWNS
from meterhub.settings import Settings, get_settings

console = Console(stderr=True)
WEEK = date(2026, 11, 23)
YEAR = 2025  # the evaluated year: its twelve months are in the data
DAYS = 63  # the 8 weeks the rules look back, and the judged week

_HOURLY = ", ".join(
    f"CASE WHEN stopped THEN base ELSE base * (CASE WHEN workday AND {h} BETWEEN 8 AND 17 "
    f"THEN 10 ELSE 1 END) * (1 + surge) END"
    for h in range(24)
)
_FEATURES = f"""
INSERT INTO firm_day_features (firm_id, day, energy, estimated, intervals, expected, hourly)
SELECT firm_id, day, (SELECT sum(x) FROM unnest(h) x), 0, 96, 96, h
FROM (
    SELECT f.id AS firm_id, d::date AS day,
           ARRAY[{_HOURLY}] AS h
    FROM firms f, generate_series($1::date, $2::date, interval '1 day') d,
         LATERAL (SELECT (10 + f.id % 17) * (1 + 0.02 * sin(f.id * 7 + extract(doy FROM d)))
                         AS base,
                         extract(isodow FROM d) < 6 AS workday,
                         (f.id % 50 = 0 AND d >= $3::date) AS stopped,
                         CASE WHEN f.id % 40 = 0 AND d = $3::date + 2 THEN 1.5 ELSE 0 END
                         AS surge) p
) s
"""
_MONTHS = """
INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, estimated, meters)
SELECT 'month', f.id, 'electricity', (m::date::timestamp AT TIME ZONE 'Asia/Shanghai'),
       (1000 + 0.002 * o.v) * (1 + f.id % 9) * (CASE WHEN f.id % 30 = 0 AND m = $2::date
                                                THEN 1.4 ELSE 1 END)
       * (1 + 0.01 * sin(f.id + extract(month FROM m))), 0, 1
FROM firms f, generate_series($1::date, $2::date, interval '1 month') m,
     LATERAL (SELECT 15e6 + 5e6 * sin(extract(epoch FROM m) / 2.6e6 + f.id) AS v) o;
INSERT INTO firm_month_features (firm_id, month, kwh, estimated, intervals, expected)
SELECT r.firm_id, (r.bucket AT TIME ZONE 'Asia/Shanghai')::date, r.energy, 0, q.n, q.n
FROM firm_rollups r,
     LATERAL (SELECT 96 * extract(day FROM (r.bucket AT TIME ZONE 'Asia/Shanghai')
                                   + interval '1 month' - interval '1 day')::int AS n) q
WHERE r.granularity = 'month';
INSERT INTO output_figures (firm_id, month, output_value, value_added, tax_paid, employees,
                            rnd_spend, main_revenue)
SELECT f.id, m::date, o.v, o.v * 0.25, o.v * 0.03, 100, o.v * 0.02, o.v
FROM firms f, generate_series($1::date, $2::date, interval '1 month') m,
     LATERAL (SELECT 15e6 + 5e6 * sin(extract(epoch FROM m) / 2.6e6 + f.id) AS v) o;
INSERT INTO firm_lists (firm_id, list, since, source)
SELECT id, 'high_energy', '2026-01-01', 'bench' FROM firms WHERE id % 25 = 0;
INSERT INTO firm_projects (firm_id, name, commissioned_year)
SELECT id, 'project', 2015 + id % 10 FROM firms WHERE id % 10 = 0;
"""


async def populate(dsn: str, firms: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_FIRMS, firms, list(INDUSTRIES), list(TOWNS))
        await conn.execute(_METERS)
        first = WEEK - timedelta(days=DAYS - 7)
        await conn.execute(_FEATURES, first, WEEK + timedelta(days=6), WEEK)
        await conn.execute(_MONTHS.replace("$1", "'2024-10-01'").replace("$2", "'2026-10-01'"))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True, slots=True)
class Timings:
    weekly: float  # all rules for one week
    year: float  # the year's per-mu evaluation and carbon grades
    notice: float  # the week's notice (cases, content, revision stored) and its exports
    summary: RunSummary

    @property
    def analytics(self) -> float:
        return self.weekly + self.year


async def measure(base: Settings, firms: int) -> Timings:
    async with bench_database(base, f"meterhub_bench_alerts_{firms}") as dsn:
        started = time.perf_counter()
        with console.status(f"building {firms:,} firms x {DAYS} days"):
            await populate(dsn, firms)
        console.print(f"  data for {firms:,} firms built in {time.perf_counter() - started:.1f} s")
        settings = base.model_copy(update={"database_url": SecretStr(dsn)})
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        book = rulebook.load(settings.rules_file)
        notices = notice_config.load(settings.notice_file)
        try:
            await run_week(pool, week=WEEK, settings=settings, rulebook=book)  # warm-up
            t0 = time.perf_counter()
            summary = await run_week(pool, week=WEEK, settings=settings, rulebook=book)
            t1 = time.perf_counter()
            await run_year(pool, period=Period(YEAR), settings=settings)
            t2 = time.perf_counter()
            issued = await generate(
                pool, week=WEEK, config=notices, rulebook=book, settings=settings
            )
            async with pool.acquire() as conn:
                stored = await reading.read(conn, week=WEEK, revision=None, town=None)
            files = {kind: len(exports.render(kind, stored["content"])) for kind in exports.Kind}
            t3 = time.perf_counter()
        finally:
            await pool.close()
    timings = Timings(weekly=t1 - t0, year=t2 - t1, notice=t3 - t2, summary=summary)
    split = ", ".join(f"{k} {v:.3f} s" for k, v in summary.seconds.items())
    console.print(
        f"  {firms:>6,} firms: week {timings.weekly:.3f} s ({split}); {summary.total:,} hits "
        f"({', '.join(f'{k} {v}' for k, v in summary.hits.items() if v)}); year's evaluation "
        f"and carbon grades {timings.year:.3f} s; notice and its three exports "
        f"{timings.notice:.3f} s ({issued.number}, revision {issued.revision}; "
        f"{', '.join(f'{k} {n // 1024} KiB' for k, n in files.items())})"
    )
    return timings


async def run(args: argparse.Namespace) -> dict[str, float]:
    base = get_settings()
    small, large = (200, 2_000) if args.quick else (2_000, 20_000)
    console.print(f"weekly analytics, week of {WEEK} ({'quick' if args.quick else 'full'} sizes)")
    small_run = await measure(base, small)
    large_run = await measure(base, large)
    t_small, t_large = small_run.analytics, large_run.analytics
    result = {
        "alerts_seconds": round(t_small, 3),
        "alerts_20k_seconds": round(t_large, 3),
        "notice_seconds": round(small_run.notice, 3),
        "firms_small": small,
        "firms_large": large,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    console.print(
        f"targets: {small:,} firms {t_small:.3f} s (< 1 s), {large:,} firms {t_large:.3f} s "
        f"(< 10 s), notice for {small:,} firms {small_run.notice:.3f} s (< 1 s), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (< 1024)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 firms")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

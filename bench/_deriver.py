"""The interval worker in a process of its own, as `meterhub derive` runs it beside the
producers (a service of its own in every deployment: `deploy/systemd`, `deploy/docker-compose`),
for the ingest benchmark; it reports every pass's committed -> queryable latencies when it
stops.

``python -m bench._deriver`` (database from ``MHUB_DATABASE_URL``) prints ``ready``, derives
until its stdin closes, then prints one ``result {json}`` line: the latency of each reading
batch its passes took, with its weight (how many dirty ranges of it), and its CPU seconds.
`deriver_process` runs it for the length of a block.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ingest.interval_worker import DeriveStats, run_interval_worker
from meterhub.runtime import tune_gc
from meterhub.settings import PROJECT_ROOT, get_settings

_RESULT = "result "


@dataclass
class DeriverReport:
    """What the process did; filled when its block ends."""

    latencies: list[float] = field(default_factory=list)  # one per dirty range derived
    passes: int = 0
    cpu_seconds: float = 0.0


@asynccontextmanager
async def deriver_process(dsn: str) -> AsyncIterator[DeriverReport]:
    """``python -m bench._deriver`` on database ``dsn`` while the block runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._deriver", cwd=PROJECT_ROOT,
        env={**os.environ, "MHUB_DATABASE_URL": dsn},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []
    while (line := (await proc.stdout.readline()).decode().strip()) != "ready":
        if not line and proc.stdout.at_eof():
            raise SystemExit(f"the deriver process exited before it was ready: {lines}")
        lines.append(line)
    output = asyncio.create_task(proc.stdout.read())  # a full pipe would block it
    report = DeriverReport()
    try:
        yield report
    finally:
        proc.stdin.close()
        lines += (await output).decode().splitlines()
        if await proc.wait() != 0:
            raise SystemExit(f"the deriver process failed ({proc.returncode}): {lines[-20:]}")
    result = json.loads(next(x for x in reversed(lines) if x.startswith(_RESULT))[len(_RESULT) :])
    report.latencies = [
        latency
        for latency, weight in zip(result["latencies"], result["weights"], strict=True)
        for _ in range(weight)
    ]
    report.passes, report.cpu_seconds = result["passes"], result["cpu_seconds"]


async def _main() -> None:
    settings = get_settings()
    tune_gc()  # as `meterhub derive` does at start-up
    latencies: list[float] = []
    weights: list[int] = []
    passes = 0

    def record(stats: DeriveStats) -> None:
        nonlocal passes
        passes += 1
        latencies.extend(stats.latencies.tolist())
        weights.extend(stats.weights.tolist())

    stop = asyncio.Event()
    worker = asyncio.create_task(run_interval_worker(settings, stop=stop, on_pass=record))
    print("ready", flush=True)
    closed = asyncio.ensure_future(asyncio.to_thread(sys.stdin.buffer.read))
    await asyncio.wait([worker, closed], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await worker  # a crashed worker raises here: the process exits non-zero
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = dict(
        latencies=latencies, weights=weights, passes=passes,
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
    )  # fmt: skip
    print(_RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())

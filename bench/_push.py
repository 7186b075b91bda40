"""The push phase of the API benchmark: the same batches through `IngestSink.submit` in
this process and through ``POST /v1/readings`` of a `meterhub serve`, on the same CPUs.

Both sides run as users run them: the sink marks dirty ranges (as every producer's does),
the API process has the push quota it is configured with (by default 20,000 readings/s per
key, bursts of 200,000) and derives nothing itself (``MHUB_INTERVAL_WORKER=false``, as when
a `meterhub derive` runs beside it). Each HTTP client pushes with a grid key of its own,
one feed each. Which ingest path the readings took is read from the counter
``meterhub_ingest_copied_readings_total{path="fast"|"merge"}``: this process's for the
in-process side, the server's ``/metrics`` for the HTTP side.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ingest.sink import IngestSink
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings
from registry.keys import Role, create_key

T0 = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)
FEED = "bench-feed"
PATHS = ("fast", "merge")
_COPIED = "meterhub_ingest_copied_readings_total"

Body = list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class Paths:
    """Readings sent by the fast path (COPY into `readings`) and by the merge path."""

    fast: float
    merge: float

    def __sub__(self, other: Paths) -> Paths:
        return Paths(self.fast - other.fast, self.merge - other.merge)

    def __add__(self, other: Paths) -> Paths:
        return Paths(self.fast + other.fast, self.merge + other.merge)

    @property
    def fast_share(self) -> float:
        total = self.fast + self.merge
        return self.fast / total if total else 0.0

    def describe(self) -> str:
        return f"{self.fast_share:.0%} fast path, {1 - self.fast_share:.0%} merge path"


@dataclass(frozen=True, slots=True)
class HttpRun:
    rate: float
    refused: int  # 429 answers (the quota), each waited out and sent again
    busy: int  # 503 answers (backpressure), likewise


async def setup(dsn: str, *, meters: int, keys: int) -> tuple[dict[str, int], list[str]]:
    """A firm with ``meters`` grid-feed meters and ``keys`` grid keys of their feed."""
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
        made = [
            (await create_key(conn, name=f"bench-{i}", role=Role.GRID, scope=FEED)).key
            for i in range(keys)
        ]
        return {r["code"]: r["id"] for r in rows}, made
    finally:
        await conn.close()


def batches(codes: list[str], steps: int, size: int, offset: int) -> Iterator[Body]:
    """Batches of ``size`` readings: every meter at consecutive quarter-hours, in time order."""
    batch: Body = []
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


def to_csv(batch: Body) -> bytes:
    lines = ["meter,ts,energy,power,voltage_a,current_a,power_factor"]
    lines += [
        f"{r['meter']},{r['ts']},{r['energy']},{r['power']},{r['voltage_a']},"
        f"{r['current_a']},{r['power_factor']}"
        for r in batch
    ]
    return ("\n".join(lines) + "\n").encode()


def local_paths() -> Paths:
    def value(path: str) -> float:
        return REGISTRY.get_sample_value(_COPIED, {"path": path}) or 0.0

    return Paths(value("fast"), value("merge"))


async def server_paths(url: str) -> Paths:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    found = dict.fromkeys(PATHS, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == _COPIED:
                found[sample.labels["path"]] = sample.value
    return Paths(found["fast"], found["merge"])


async def in_process_rate(
    settings: Settings, ids: dict[str, int], work: list[Body], clients: int
) -> tuple[float, Paths]:
    """Readings/s of ``clients`` producers submitting ``work`` (in time order) to one sink."""
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
    queue = readings[::-1]  # popped from the end: oldest first
    before = local_paths()
    async with IngestSink(settings) as sink:

        async def produce() -> None:
            while queue:
                await sink.submit(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(produce() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return sum(len(b) for b in readings) / elapsed, local_paths() - before


async def http_rate(url: str, keys: list[str], bodies: list[tuple[bytes, str]]) -> HttpRun:
    """Readings/s of one client per key POSTing ``bodies`` (in time order); a 429 or 503
    is waited out (``Retry-After``) and the batch sent again, as a feed would."""
    queue = bodies[::-1]
    total = refused = busy = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:

        async def produce(key: str) -> None:
            nonlocal total, refused, busy
            while queue:
                body, media = queue.pop()
                while True:
                    r = await http.post(
                        "/v1/readings",
                        content=body,
                        headers={"X-API-Key": key, "Content-Type": media},
                    )
                    if r.status_code not in (429, 503):
                        break
                    refused += r.status_code == 429
                    busy += r.status_code == 503
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                r.raise_for_status()
                total += r.json()["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(produce(key) for key in keys))
        elapsed = time.perf_counter() - started
    return HttpRun(total / elapsed, refused, busy)


@contextmanager
def api_server(dsn: str, spool: Path) -> Iterator[str]:
    """`meterhub serve` on a free port of 127.0.0.1, configured from this environment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": dsn,
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(spool),
        "MHUB_LOG_LEVEL": "WARNING",
        # Deployed with a `meterhub derive` beside it: this process derives nothing.
        "MHUB_INTERVAL_WORKER": "false",
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

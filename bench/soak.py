"""Soak: a fleet of simulated terminals at a 1-minute interval through every path, for a while.

    .venv/bin/python bench/soak.py [--terminals 10000] [--minutes 30] [--json]

A third of the terminals (each path gets ``--terminals`` / 3) arrive by the HTTP push (one
grid-feed client posting every meter's reading each minute, in requests of 1,000), a third
by MQTT (gateways of 100 channels publishing one QoS 1 message a minute to a private
Mosquitto, `meterhub ingest-mqtt` taking them), a third by polling (`meterhub collect`
polling the Modbus and DL/T 645 simulator fleets, half each, every minute). The database is
a throwaway one in the local PostgreSQL (never stopped); `meterhub serve` runs the API and
the interval worker. Every 10 s it samples the RSS of each process, the spool bytes on disk
of each, the API's and the MQTT worker's ingest queue and the interval worker's dirty
backlog (`interval_dirty` rows); a probe follows 20 meters of each path and measures
reading-to-queryable: the time from a reading's timestamp (when it is sent or polled) until
a query sees it. At the end: first/last/max of each sample, p50/p99 latency per path, the
readings stored against those sent, and the machine's load average (it is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._db import bench_database
from bench._processes import sim_process
from bench._registry import dlt645_rows, modbus_rows, register
from bench._soak_figures import dir_bytes, gauge, latency_figures, series, verdict
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from registry.keys import Role, create_key
from simulators.mqtt_gateway import MqttGatewaySimulator
from tests.collectors.mqtt.conftest import create_mqtt_meters
from tests.reliability.broker import PrivateBroker, free_port
from tests.reliability.support import FEED, grid_codes

CHANNELS = 100
PUSH_BATCH = 1_000
SAMPLE_EVERY = 10.0
QUARANTINED = "SELECT reason, count(*) AS n FROM quarantine GROUP BY 1"
STORED = (
    "SELECT m.protocol, count(*) AS n FROM readings r JOIN meters m ON m.id = r.meter_id GROUP BY 1"
)


def meterhub(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("meterhub"))
    with log.open("ab") as out:
        return subprocess.Popen([exe, *args], env={**os.environ, **env}, stdout=out, stderr=out)


def small_energy(channel: int, ts: datetime) -> dict[str, float]:
    """1 kW per channel since 2026 on a register far from its rollover (the gateway
    simulator's default grows 100 kWh per channel: beyond rollover at 100 channels)."""
    hours = (ts - datetime(2026, 1, 1, tzinfo=LOCAL_TZ)).total_seconds() / 3600
    return {"energy": round(1000.0 + channel + hours, 3), "power": 1.0}


def now_tick() -> datetime:
    """The current minute in Asia/Shanghai."""
    return datetime.now(LOCAL_TZ).replace(second=0, microsecond=0)


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        per_path = args.terminals // 3
        self.http_n, self.mqtt_gateways = per_path, max(1, per_path // CHANNELS)
        self.poll_n = per_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.samples: list[dict[str, float]] = []
        self.latency: dict[str, list[float]] = {"http": [], "mqtt": [], "poll": []}
        self.sent = {"http": 0, "mqtt": 0}
        self.probe_meters: dict[str, list[int]] = {}

    async def setup(self, dsn: str, broker: PrivateBroker, stack: AsyncExitStack) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            self.key = (await create_key(conn, name="soak", role=Role.GRID, scope=FEED)).key
            self.codes = await grid_codes(conn, self.http_n, FEED)
            ids = await conn.fetch("SELECT id FROM meters WHERE code = ANY($1)", self.codes)
            self.probe_meters["http"] = [r["id"] for r in ids[:20]]
            self.gateways: list[tuple[str, str]] = []
            mqtt_ids: list[int] = []
            for _ in range(self.mqtt_gateways):
                gateway_id = f"soak-{uuid.uuid4().hex[:8]}"
                password = broker.add_user(gateway_id, f"pw-{gateway_id}")
                meters = await create_mqtt_meters(conn, gateway_id, range(1, CHANNELS + 1))
                mqtt_ids += list(meters.values())
                self.gateways.append((gateway_id, password))
            self.probe_meters["mqtt"] = mqtt_ids[:20]
        finally:
            await conn.close()
        modbus_n, dlt_n = self.poll_n - self.poll_n // 2, self.poll_n // 2
        ports, buses = math.ceil(modbus_n / 200), math.ceil(dlt_n / 32)
        modbus = await stack.enter_async_context(
            sim_process("modbus", "simulators.modbus_fleet", f"--ports={ports}", "--units=200")
        )
        dlt = await stack.enter_async_context(
            sim_process("dlt645", "simulators.dlt645_fleet", f"--gateways={buses}", "--meters=32")
        )
        self.sims = {"sim-modbus": modbus.proc.pid, "sim-dlt645": dlt.proc.pid}
        await register(
            dsn, protocol="modbus", rows=modbus_rows(modbus.lines, units=200, count=modbus_n)
        )
        await register(
            dsn, protocol="dlt645", rows=dlt645_rows(dlt.lines, count=dlt_n, gap_ms=None)
        )
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT id FROM meters WHERE protocol IN ('modbus', 'dlt645') ORDER BY id"
            )
            self.probe_meters["poll"] = [r["id"] for r in rows[:: max(1, len(rows) // 20)]][:20]
        finally:
            await conn.close()

    def start_processes(self, dsn: str, broker: PrivateBroker) -> None:
        self.api_port, self.mqtt_metrics = free_port(), free_port()
        base = {"MHUB_DATABASE_URL": dsn, "MHUB_LOG_FORMAT": "json", "MHUB_LOG_LEVEL": "WARNING"}
        for name, args, extra in (
            ("serve", ["serve"], {"MHUB_API_PORT": str(self.api_port)}),
            (
                "ingest-mqtt",
                ["ingest-mqtt", "--metrics-port", str(self.mqtt_metrics)],
                {"MHUB_MQTT_URL": broker.ingest_url},
            ),
            ("collect", ["collect"], {}),
        ):
            env = {**base, **extra, "MHUB_SPOOL_DIR": str(self.work / f"spool-{name}")}
            self.procs[name] = meterhub(*args, env=env, log=self.work / f"{name}.log")

    async def push_http(self, http: httpx.AsyncClient, tick: datetime) -> None:
        ts = tick.isoformat()
        for i in range(0, len(self.codes), PUSH_BATCH):
            body = orjson.dumps(
                [
                    {"meter": c, "ts": ts, "energy": 1.0 + tick.timestamp() / 3.6e6}
                    for c in self.codes[i : i + PUSH_BATCH]
                ]
            )
            for _ in range(60):
                try:
                    r = await http.post(
                        "/v1/readings",
                        content=body,
                        headers={"X-API-Key": self.key, "Content-Type": "application/json"},
                    )
                    if r.status_code == 202:
                        self.sent["http"] += len(self.codes[i : i + PUSH_BATCH])
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(1.0)

    async def publish_mqtt(self, gateways: list[MqttGatewaySimulator], tick: datetime) -> None:
        async def one(gw: MqttGatewaySimulator) -> None:
            await gw.publish_elements(gw.elements(tick.astimezone(UTC)))
            self.sent["mqtt"] += CHANNELS

        await asyncio.gather(*(one(gw) for gw in gateways))

    async def probe(self, dsn: str, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(dsn)
        last: dict[int, datetime] = {}
        try:
            while not stop.is_set():
                for path, meters in self.probe_meters.items():
                    rows = await conn.fetch(
                        "SELECT DISTINCT ON (meter_id) meter_id, ts FROM readings "
                        "WHERE meter_id = ANY($1) AND ts > now() - interval '3 minutes' "
                        "ORDER BY meter_id, ts DESC",
                        meters,
                    )
                    seen = datetime.now(UTC)
                    for r in rows:
                        if last.get(r["meter_id"]) != r["ts"]:
                            if r["meter_id"] in last:
                                self.latency[path].append((seen - r["ts"]).total_seconds())
                            last[r["meter_id"]] = r["ts"]
                await asyncio.sleep(0.25)
        finally:
            await conn.close()

    async def sample(self, dsn: str, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                while not stop.is_set():
                    s: dict[str, float] = {"t": time.monotonic()}
                    for name, proc in {
                        **{n: p.pid for n, p in self.procs.items()},
                        **self.sims,
                    }.items():
                        try:
                            s[f"rss_mb.{name}"] = psutil.Process(proc).memory_info().rss / 2**20
                        except psutil.Error:
                            s[f"rss_mb.{name}"] = math.nan
                    for name in self.procs:
                        s[f"spool_bytes.{name}"] = dir_bytes(self.work / f"spool-{name}")
                    for name, port in (
                        ("serve", self.api_port),
                        ("ingest-mqtt", self.mqtt_metrics),
                    ):
                        try:
                            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                            s[f"queue.{name}"] = gauge(text, "meterhub_ingest_queue_readings")
                        except httpx.HTTPError:
                            s[f"queue.{name}"] = math.nan
                    s["dirty_rows"] = float(
                        await conn.fetchval("SELECT coalesce(sum(ranges), 0) FROM interval_dirty")
                    )
                    self.samples.append(s)
                    await asyncio.sleep(SAMPLE_EVERY)
        finally:
            await conn.close()

    async def run(self, dsn: str, broker: PrivateBroker) -> dict[str, Any]:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.api_port}", timeout=30
        ) as http:
            for _ in range(120):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            gateways = [
                MqttGatewaySimulator(
                    broker.url, g, p, channels=range(1, CHANNELS + 1), values=small_energy
                )
                for g, p in self.gateways
            ]
            async with AsyncExitStack() as stack:
                for gw in gateways:
                    await stack.enter_async_context(gw)
                stop = asyncio.Event()
                tasks = [
                    asyncio.create_task(self.probe(dsn, stop)),
                    asyncio.create_task(self.sample(dsn, stop)),
                ]
                started = time.monotonic()
                for _ in range(self.args.minutes):
                    tick = now_tick() + timedelta(minutes=1)
                    await asyncio.sleep(max(0.0, (tick - datetime.now(LOCAL_TZ)).total_seconds()))
                    await asyncio.gather(
                        self.push_http(http, tick), self.publish_mqtt(gateways, tick)
                    )
                await asyncio.sleep(15)  # the last minute's readings settle
                stop.set()
                await asyncio.gather(*tasks)
        return self.report(dsn, time.monotonic() - started)

    def report(self, dsn: str, seconds: float) -> dict[str, Any]:
        return {
            "terminals": {
                "http": self.http_n,
                "mqtt": self.mqtt_gateways * CHANNELS,
                "poll": self.poll_n,
            },
            "minutes": self.args.minutes,
            "seconds": round(seconds, 1),
            "sent": self.sent,
            "latency_s": {k: latency_figures(v) for k, v in self.latency.items()},
            "samples": series(self.samples),
            "loadavg": os.getloadavg(),
            "cpus": os.cpu_count(),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="only the JSON report on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    settings = Settings()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="meterhub-soak-"))
    try:
        broker = PrivateBroker(work / "run")
        broker.add_user("_setup", "unused")
        broker.start()
        soak = Soak(args, work)
        try:
            async with (
                bench_database(settings, f"soak_{uuid.uuid4().hex[:8]}") as dsn,
                AsyncExitStack() as stack,
            ):
                await soak.setup(dsn, broker, stack)
                soak.start_processes(dsn, broker)
                try:
                    result = await soak.run(dsn, broker)
                    conn = await asyncpg.connect(dsn)
                    try:
                        rows = await conn.fetch(STORED)
                        result["stored"] = {r["protocol"]: r["n"] for r in rows}
                        rows = await conn.fetch(QUARANTINED)
                        result["quarantined"] = {r["reason"]: r["n"] for r in rows}
                    finally:
                        await conn.close()
                finally:
                    for proc in soak.procs.values():
                        proc.terminate()
                    for proc in soak.procs.values():
                        try:
                            proc.wait(timeout=60)
                        except subprocess.TimeoutExpired:
                            proc.kill()
        finally:
            broker.stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_before"] = load_before
    result["verdict"] = verdict(result)
    if not args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    asyncio.run(main())

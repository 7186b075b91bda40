"""`meterhub serve` as a real process against a private PostgreSQL, and a grid-feed client that
pushes a stream of batches and retries what was not acknowledged (503 or a dropped
connection), its readings counted by `tests.reliability.accounting`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson

from meterhub.reading import LOCAL_TZ
from tests.reliability.accounting import Ledger, Tally

T0 = datetime(2026, 3, 2, tzinfo=LOCAL_TZ)
STEP = timedelta(minutes=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiProcess:
    """One `meterhub serve` on a free loopback port; restartable with the same spool."""

    def __init__(self, *, dsn: str, spool: Path, log: Path, mqtt_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "MHUB_DATABASE_URL": dsn,
            "MHUB_API_PORT": str(self.port),
            "MHUB_SPOOL_DIR": str(spool),
            "MHUB_MQTT_URL": mqtt_url,  # /readyz checks the broker: the test's own
            "MHUB_LOG_FORMAT": "json",
        }
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        meterhub = Path(sys.executable).with_name("meterhub")
        with self._log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(meterhub), "serve"], env=self._env, stdout=out, stderr=out
            )

    def wait_live(self, timeout: float = 20.0) -> float:
        """Seconds until /livez answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.url}/livez", timeout=0.5).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"/livez did not answer in {timeout} s\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(timeout=30)

    def tail(self) -> str:
        return self._log.read_text(errors="replace")[-3000:] if self._log.exists() else ""


async def wait_ready(url: str, *, timeout: float) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while time.monotonic() - started < timeout:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz not 200 within {timeout} s")


@dataclass
class FeedClient:
    """Pushes batch n = every code at T0 + n·STEP (energy 100 + n), one at a time; a batch
    not acknowledged is sent again (Retry-After shortened to ``retry`` s for the test)."""

    url: str
    key: str
    codes: list[str]
    retry: float = 0.2
    statuses: dict[int, int] = field(default_factory=dict)  # status (0: no answer) -> count
    spooled: int = 0
    acked_batches: set[int] = field(default_factory=set)
    log: list[tuple[float, int]] = field(default_factory=list)  # (time, status)

    def body(self, n: int) -> bytes:
        ts = (T0 + n * STEP).isoformat()
        return orjson.dumps([{"meter": c, "ts": ts, "energy": 100.0 + n} for c in self.codes])

    async def push(self, http: httpx.AsyncClient, n: int) -> int:
        try:
            response = await http.post(
                "/v1/readings",
                content=self.body(n),
                headers={"X-API-Key": self.key, "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            status = 0
        else:
            status = response.status_code
            if status == 202:
                body = response.json()
                assert body["rejected"] == 0, body
                self.spooled += bool(body["spooled"])
                self.acked_batches.add(n)
            elif status == 503:
                assert "Retry-After" in response.headers, response.text
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.log.append((time.monotonic(), status))
        return status

    async def stream(self, batches: range, *, pace: float = 0.03, give_up: float = 120) -> None:
        """Every batch of ``batches`` until acknowledged (at most ``give_up`` s in all)."""
        deadline = time.monotonic() + give_up
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            for n in batches:
                while await self.push(http, n) != 202:
                    assert time.monotonic() < deadline, f"batch {n} never acknowledged"
                    await asyncio.sleep(self.retry)
                await asyncio.sleep(pace)

    def statuses_between(self, start: float, end: float) -> dict[int, int]:
        counts: dict[int, int] = {}
        for at, status in self.log:
            if start <= at <= end:
                counts[status] = counts.get(status, 0) + 1
        return counts


async def tally(
    conn: asyncpg.Connection, scenario: str, client: FeedClient, batches: range
) -> Tally:
    """The client's ledger (batch n: every code at T0 + n·STEP, energy 100 + n), settled."""
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM meters WHERE code = ANY($1::text[])", client.codes
        )
    ]
    ledger = Ledger(scenario)
    ledger.send(((m, T0 + n * STEP), 100.0 + n) for n in batches for m in ids)
    ledger.ack((m, T0 + n * STEP) for n in client.acked_batches for m in ids)
    result = await ledger.settle(conn)
    print(f"statuses={client.statuses}", f"spooled_batches={client.spooled}")
    return result

"""`meterhub ingest-mqtt` as a real process (the console script), restartable with the same
client id and spool, for tests that SIGKILL it mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson


class MqttWorkerProcess:
    """One ``meterhub ingest-mqtt --gateways <id>`` against ``broker_url`` and ``dsn``."""

    def __init__(
        self, *, broker_url: str, dsn: str, spool: Path, log: Path, gateway_id: str
    ) -> None:
        self._env = {
            **os.environ,
            "MHUB_MQTT_URL": broker_url,
            "MHUB_DATABASE_URL": dsn,
            "MHUB_SPOOL_DIR": str(spool),
            "MHUB_BATCH_MAX_AGE": "0.02",
            "MHUB_LOG_FORMAT": "json",
            "MHUB_LOG_LEVEL": "INFO",
        }
        self._args = [
            str(Path(sys.executable).with_name("meterhub")),
            *("ingest-mqtt", "--client-id", f"ingest-{gateway_id}", "--gateways", gateway_id),
            *("--session-expiry", "600", "--drain-timeout", "10"),
        ]
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, timeout: float = 60.0) -> None:
        """Start and wait until it has subscribed (a new "mqtt subscribed" log line)."""
        before = self._subscribed()
        with self._log.open("ab") as out:
            self.proc = subprocess.Popen(self._args, env=self._env, stdout=out, stderr=out)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while self._subscribed() == before:
            assert self.proc.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"not subscribed in {timeout} s\n{self.tail()}"
            time.sleep(0.05)

    def _subscribed(self) -> int:
        if not self._log.exists():
            return 0
        count = 0
        for line in self._log.read_bytes().splitlines():
            if line.startswith(b"{") and orjson.loads(line).get("event") == "mqtt subscribed":
                count += 1
        return count

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self._log.read_text(errors="replace")[-3000:] if self._log.exists() else ""

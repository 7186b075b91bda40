"""A Mosquitto of a test's own: the project's configuration, users and ACL, in a tmp dir.

``deploy/services.sh mqtt-user`` (with ``MHUB_RUN_DIR`` pointing at the tmp dir) writes the
configuration from ``deploy/mosquitto.conf.template``, the ingest user's secret, the password
file and the ACL exactly as for the shared broker; this module only starts ``mosquitto -c``
on a free loopback port and stops it (SIGTERM or SIGKILL) when a test says so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from meterhub.settings import PROJECT_ROOT

SERVICES = PROJECT_ROOT / "deploy" / "services.sh"


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateBroker:
    """``mosquitto -c <run_dir>/mosquitto/mosquitto.conf`` on ``port`` (persistence on).

    Example::

        broker = PrivateBroker(tmp_path)
        password = broker.add_user("gw-1", "pw")
        broker.start()
        broker.restart(signal.SIGKILL)
        broker.stop()
    """

    def __init__(self, run_dir: Path, *, port: int | None = None) -> None:
        self.run_dir = run_dir
        self.port = port or free_port()
        self.directory = run_dir / "mosquitto"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker without credentials (gateways log in as themselves)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ingest_url(self) -> str:
        """The broker as the ingest service logs in to it."""
        secret = (self.run_dir / "secrets" / "mqtt_ingest_password").read_text().strip()
        return f"mqtt://ingest:{quote(secret, safe='')}@127.0.0.1:{self.port}"

    def add_user(self, name: str, password: str) -> str:
        """Create the gateway user ``name`` (and, the first time, the whole configuration);
        a running broker reloads it. Returns ``password``."""
        env = {**os.environ, "MHUB_RUN_DIR": str(self.run_dir), "MHUB_MQTT_PORT": str(self.port)}
        subprocess.run(
            ["bash", str(SERVICES), "mqtt-user", name, password],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return password

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        conf = self.directory / "mosquitto.conf"
        log = (self.directory / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = 30.0) -> None:
        """Stop the broker with ``sig`` (SIGTERM saves its persistence file, SIGKILL not)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self, sig: signal.Signals = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        """Stop with ``sig``, stay away ``down_for`` seconds, start again (same port)."""
        self.stop(sig)
        if down_for:
            time.sleep(down_for)
        self.start()

    def log_text(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

"""A throwaway PostgreSQL + TimescaleDB cluster of a test's own, for tests that stop, kill or
restart the database (never the shared one at 127.0.0.1:55432 that others are using).

It uses the binaries `deploy/services.sh` uses (``/usr/lib/postgresql/<major>/bin`` of the
shared cluster's version), preloads timescaledb the same way, listens on a free loopback
port only (no unix socket) and lives in a temporary folder owned by the PostgreSQL OS user.

Use the `private_postgres` fixture (import it into a conftest), or `PrivatePostgres` itself::

    cluster = PrivatePostgres.create()
    cluster.start(); ...; cluster.stop(mode="immediate"); cluster.start(); cluster.destroy()
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from meterhub.migrate import migrate
from meterhub.settings import Settings

_USER = "meterhub"
_DATABASE = "meterhub"


def _pg_bin(run_dir: Path) -> Path:
    """The binaries of the shared cluster's major version (as services.sh picks them)."""
    version_file = run_dir / "pg" / "data" / "PG_VERSION"
    if version_file.exists():
        return Path(f"/usr/lib/postgresql/{version_file.read_text().strip()}/bin")
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL binaries: run `make services` first", pytrace=False)
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _os_user() -> str:
    """PostgreSQL refuses to run as root; services.sh runs it as `postgres` then."""
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class PrivatePostgres:
    pg_bin: Path
    directory: Path
    port: int
    password: str

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def dsn(self, database: str = _DATABASE) -> str:
        return f"postgresql://{_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def create(cls, run_dir: Path) -> PrivatePostgres:
        pg_bin = _pg_bin(run_dir)
        directory = Path(tempfile.mkdtemp(prefix="meterhub-pg-"))
        cluster = cls(pg_bin, directory, _free_port(), secrets.token_hex(16))
        user = _os_user()
        shutil.chown(directory, user)
        password_file = directory / "pw"
        password_file.write_text(cluster.password)
        shutil.chown(password_file, user)
        cluster._as_pg(
            "initdb", "-D", str(cluster.data), "-U", _USER, f"--pwfile={password_file}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        password_file.unlink()
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"port = {cluster.port}",
            "unix_socket_directories = ''",
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.max_background_workers = 0",
            "max_connections = 60",
            "shared_buffers = 64MB",
            "fsync = on",
            "synchronous_commit = on",
        ]
        if _has_telemetry(pg_bin):  # never phone home from a test
            conf.append("timescaledb.telemetry_level = off")
        with (cluster.data / "postgresql.conf").open("a") as f:
            f.write("\n# tests/pg_cluster.py\n" + "\n".join(conf) + "\n")
        return cluster

    def _as_pg(self, tool: str, *args: str) -> None:
        command = [str(self.pg_bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _os_user(), "--", *command]
        result = subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{log}")

    def start(self) -> None:
        self._as_pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean), or ``immediate`` (like a crash: no checkpoint,
        recovery from the WAL at the next start)."""
        self._as_pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    async def prepare(self, migrations: Path) -> None:
        """Create the application database and run every migration."""
        conn = await asyncpg.connect(self.dsn("postgres"), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{_DATABASE}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(self.dsn(), timeout=10)
        try:
            await migrate(conn, migrations)
        finally:
            await conn.close()


def _has_telemetry(pg_bin: Path) -> bool:
    """Whether this timescaledb build has the telemetry setting (as services.sh checks)."""
    libdir = subprocess.run(
        [str(pg_bin / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    libraries = Path(libdir).glob("timescaledb-[0-9]*.so")
    return any(b"telemetry_level" in library.read_bytes() for library in libraries)


@pytest.fixture
def private_postgres(base_settings: Settings) -> Iterator[PrivatePostgres]:
    """A migrated cluster of this test's own, started; stop and start it at will."""
    cluster = PrivatePostgres.create(base_settings.run_dir)
    try:
        cluster.start()
        asyncio.run(cluster.prepare(base_settings.migrations_dir))
        yield cluster
    finally:
        cluster.destroy()

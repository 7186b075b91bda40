"""Shared fixtures: a throwaway database per test session in the local instance."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from ingest.sink import IngestSink

# No API the tests start (in-process or as a process) judges weeks on its own clock: the
# tests that need the weekly analytics run them explicitly.
os.environ.setdefault("MHUB_ALERTS_SCHEDULE", "false")
from meterhub.migrate import migrate
from meterhub.settings import Settings
from tests import loopback_guard

loopback_guard.install()  # no test reaches beyond this machine (see tests/loopback_guard.py)


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings of the running local services (`make services`), or a clear failure."""
    settings = Settings()
    if (
        settings.database_url is None
        and not (settings.run_dir / "secrets" / "pg_password").exists()
    ):
        pytest.fail("the local services are not set up: run `make services` first", pytrace=False)
    return settings


async def _create_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def empty_database(base_settings: Settings) -> Iterator[str]:
    """Factory-free: one empty database (no migrations) for this session; its DSN."""
    admin = base_settings.dsn()
    name = f"meterhub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"cannot reach the local PostgreSQL ({exc}); run `make services`", pytrace=False
        )
    yield _with_database(admin, name)
    asyncio.run(_drop_database(admin, name))


@pytest.fixture(scope="session")
def settings(base_settings: Settings, empty_database: str) -> Settings:
    """Settings pointing at this session's own migrated database (never the demo's)."""

    async def _migrate() -> None:
        conn = await asyncpg.connect(empty_database)
        try:
            await migrate(conn, base_settings.migrations_dir)
        finally:
            await conn.close()

    asyncio.run(_migrate())
    return base_settings.model_copy(update={"database_url": SecretStr(empty_database)})


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.dsn())
    yield conn
    await conn.close()


@pytest.fixture
def scratch_database(base_settings: Settings) -> Iterator[str]:
    """A brand-new empty database for one test; dropped afterwards."""
    admin = base_settings.dsn()
    name = f"meterhub_scratch_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_database(admin, name))
    yield _with_database(admin, name)
    asyncio.run(_drop_database(admin, name))


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


@pytest.fixture
def sink_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"spool_dir": tmp_path / "spool", "batch_max_age": 0.02, "batch_size": 5_000}
    )


@pytest.fixture
async def sink(sink_settings: Settings) -> AsyncIterator[IngestSink]:
    async with IngestSink(sink_settings) as running:
        yield running

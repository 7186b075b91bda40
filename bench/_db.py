"""A throwaway, migrated database for one benchmark run (never the demo's data)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from meterhub.migrate import migrate
from meterhub.settings import Settings


@asynccontextmanager
async def bench_database(settings: Settings, name: str) -> AsyncIterator[str]:
    """Create database ``name`` (suffixed with this process's id, so that two benchmark runs
    never drop each other's) afresh, migrate it, yield its DSN, drop it afterwards."""
    name = f"{name}_{os.getpid()}"
    admin = settings.dsn()
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, settings.migrations_dir)
    finally:
        await conn.close()
    try:
        yield dsn
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

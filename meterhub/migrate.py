"""Numbered plain-SQL migrations, each applied in its own transaction and checksummed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from meterhub.errors import MeterhubError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6D687562  # "mhub": one migrator at a time

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(MeterhubError):
    code = "migration"


class MigrationChecksumError(MigrationError):
    code = "migration_checksum"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationState:
    migration: Migration
    applied: bool


def discover(directory: Path) -> list[Migration]:
    """The migration files in ``directory``, ordered by version; misnamed files are an error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


async def _applied(conn: asyncpg.Connection) -> dict[int, str]:
    await conn.execute(_CREATE_TABLE)
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


def _check_unchanged(migrations: list[Migration], applied: dict[int, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationChecksumError(
                f"migration {migration.path.name} was edited after it was applied "
                f"(recorded sha256 {recorded[:12]}…, file {migration.checksum[:12]}…); "
                "add a new migration instead of editing an applied one"
            )


async def status(conn: asyncpg.Connection, directory: Path) -> list[MigrationState]:
    """Each migration file and whether it is applied; raises if an applied file was edited."""
    migrations = discover(directory)
    applied = await _applied(conn)
    _check_unchanged(migrations, applied)
    return [MigrationState(m, m.version in applied) for m in migrations]


async def migrate(conn: asyncpg.Connection, directory: Path) -> list[Migration]:
    """Apply every pending migration in order; returns those applied (empty: nothing to do)."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        migrations = discover(directory)
        applied = await _applied(conn)
        _check_unchanged(migrations, applied)
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)

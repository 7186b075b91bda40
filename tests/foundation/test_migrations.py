from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from meterhub.migrate import MigrationChecksumError, MigrationError, discover, migrate, status
from meterhub.settings import Settings

pytestmark = pytest.mark.integration


async def test_apply_to_empty_database_then_second_run_is_a_noop(
    scratch_database: str, base_settings: Settings
) -> None:
    conn = await asyncpg.connect(scratch_database)
    try:
        files = discover(base_settings.migrations_dir)
        first = await migrate(conn, base_settings.migrations_dir)
        assert [m.version for m in first] == [m.version for m in files]
        assert await migrate(conn, base_settings.migrations_dir) == []
        recorded = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY 1")
        assert [(r["version"], r["checksum"]) for r in recorded] == [
            (m.version, m.checksum) for m in files
        ]
        assert all(state.applied for state in await status(conn, base_settings.migrations_dir))
    finally:
        await conn.close()


async def test_edited_applied_migration_is_refused(scratch_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (x int);\n")
    conn = await asyncpg.connect(scratch_database)
    try:
        assert len(await migrate(conn, tmp_path)) == 1
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (x bigint);\n")
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE t2 (x int);\n")
        with pytest.raises(MigrationChecksumError, match=r"0001_first\.sql was edited"):
            await migrate(conn, tmp_path)
        with pytest.raises(MigrationChecksumError):
            await status(conn, tmp_path)
        # Nothing after the refused check ran.
        assert await conn.fetchval("SELECT to_regclass('t2')") is None
    finally:
        await conn.close()


async def test_failing_migration_rolls_back_alone(scratch_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (x int);\n")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (x int);\nSELECT no_such_fn();\n")
    conn = await asyncpg.connect(scratch_database)
    try:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed"):
            await migrate(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('ok')") is not None
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert [r["version"] for r in versions] == [1]
    finally:
        await conn.close()


def test_misnamed_migration_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)


def test_shipped_migrations_are_numbered_without_gaps(base_settings: Settings) -> None:
    versions = [m.version for m in discover(base_settings.migrations_dir)]
    assert versions == list(range(1, len(versions) + 1))


async def test_readings_is_a_one_day_hypertable_without_default_index(
    db: asyncpg.Connection,
) -> None:
    dims = await db.fetchrow(
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name = 'readings'"
    )
    assert dims is not None
    assert dims["column_name"] == "ts"
    assert str(dims["time_interval"]) == "1 day, 0:00:00"
    indexes = await db.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'readings'")
    assert [r["indexname"] for r in indexes] == ["readings_pkey"]


async def test_migrations_dir_copy_is_applied_identically(
    scratch_database: str, base_settings: Settings, tmp_path: Path
) -> None:
    shutil.copytree(base_settings.migrations_dir, tmp_path / "m")
    conn = await asyncpg.connect(scratch_database)
    try:
        await migrate(conn, tmp_path / "m")
        assert await migrate(conn, base_settings.migrations_dir) == []
    finally:
        await conn.close()

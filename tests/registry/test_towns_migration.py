"""Migration 0006: the towns table, full names mapped to short ones, then the foreign key."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from meterhub.migrate import MigrationError, migrate
from meterhub.settings import Settings
from tests.support import credit_code

pytestmark = pytest.mark.integration

STREETS = ["稠城", "北苑", "稠江", "江东", "后宅", "城西", "廿三里", "福田"]
TOWNS = ["佛堂", "赤岸", "义亭", "上溪", "大陈", "苏溪"]


async def _before_towns(conn: asyncpg.Connection, migrations: Path, into: Path) -> None:
    """Migrate ``conn`` up to 0005 (the schema before the towns)."""
    for path in sorted(migrations.glob("*.sql")):
        if int(path.name[:4]) < 6:
            shutil.copy(path, into / path.name)
    await migrate(conn, into)


async def _firm(conn: asyncpg.Connection, n: int, town: str) -> None:
    await conn.execute(
        "INSERT INTO firms (credit_code, name, industry, town) VALUES ($1, $2, 'C1711', $3)",
        credit_code(n),
        f"迁移测试{n}",
        town,
    )


async def test_full_names_become_short_names_then_the_key_holds(
    scratch_database: str, base_settings: Settings, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(scratch_database)
    try:
        await _before_towns(conn, base_settings.migrations_dir, tmp_path)
        for n, town in enumerate(["苏溪镇", "稠城街道", "佛堂", " 廿三里街道 ", "义亭镇人民政府"]):
            await _firm(conn, n + 1, town)
        await conn.execute(
            "INSERT INTO api_keys (name, prefix, secret_hash, role, scope) VALUES "
            "('t', 'aaaaaaaa', 'x', 'town', '苏溪镇'), ('g', 'bbbbbbbb', 'y', 'grid', '苏溪镇')"
        )
        shutil.copy(base_settings.migrations_dir / "0006_towns.sql", tmp_path)
        assert [m.version for m in await migrate(conn, tmp_path)] == [6]

        towns = await conn.fetch("SELECT * FROM towns ORDER BY sort_order")
        assert [t["name"] for t in towns] == STREETS + TOWNS
        assert [t["kind"] for t in towns] == ["street"] * 8 + ["town"] * 6
        by_name = {t["name"]: t for t in towns}
        assert (by_name["苏溪"]["full_name"], by_name["苏溪"]["notice_unit"]) == (
            "苏溪镇",
            "苏溪镇人民政府",
        )
        assert (by_name["稠城"]["full_name"], by_name["稠城"]["notice_unit"]) == (
            "稠城街道",
            "稠城街道办事处",
        )
        stored = await conn.fetch("SELECT town FROM firms ORDER BY credit_code")
        assert [r["town"] for r in stored] == ["苏溪", "稠城", "佛堂", "廿三里", "义亭"]
        scopes = await conn.fetch("SELECT role, scope FROM api_keys ORDER BY prefix")
        assert [tuple(r) for r in scopes] == [("town", "苏溪"), ("grid", "苏溪镇")]
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await _firm(conn, 99, "苏溪镇")
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("UPDATE firms SET town = '亚特兰蒂斯'")
    finally:
        await conn.close()


async def test_an_unknown_town_stops_the_migration_and_changes_nothing(
    scratch_database: str, base_settings: Settings, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(scratch_database)
    try:
        await _before_towns(conn, base_settings.migrations_dir, tmp_path)
        await _firm(conn, 1, "苏溪镇")
        await _firm(conn, 2, "亚特兰蒂斯")
        shutil.copy(base_settings.migrations_dir / "0006_towns.sql", tmp_path)
        with pytest.raises(MigrationError, match="亚特兰蒂斯"):
            await migrate(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('towns')") is None
        stored = await conn.fetch("SELECT town FROM firms ORDER BY credit_code")
        assert [r["town"] for r in stored] == ["苏溪镇", "亚特兰蒂斯"]
    finally:
        await conn.close()

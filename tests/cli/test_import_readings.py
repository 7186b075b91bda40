"""`meterhub import readings` as a user runs it: a real process against the session DB."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from meterhub.settings import Settings
from tests.support import create_meters

pytestmark = pytest.mark.integration


def _run(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_SPOOL_DIR": str(path.parent / "spool"),
    }
    meterhub = Path(sys.executable).with_name("meterhub")
    return subprocess.run(
        [str(meterhub), "import", "readings", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_import_is_counted_and_idempotent(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    (meter_id,) = await create_meters(db, 1)
    code = f"IMP-{uuid.uuid4().hex[:8]}"
    await db.execute("UPDATE meters SET code = $2 WHERE id = $1", meter_id, code)
    lines = ["\ufeff表号,抄表时间,正向有功总电量,有功功率"]
    lines += [
        f"{code},2026-02-{1 + i // 96:02d}T{i % 96 // 4:02d}:{i % 4 * 15:02d}:00+08:00,"
        f"{1000 + i * 0.5},2.0"
        for i in range(96 * 3)
    ]
    lines += ["nobody,2026-02-01T00:00:00+08:00,1,1", f"{code},yesterday,1,1"]
    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    first = _run(settings, path)
    assert first.returncode == 0, first.stderr
    assert "accepted 288, duplicates 0, conflicts 0, rejected 2" in first.stderr
    second = _run(settings, path)
    assert "accepted 0, duplicates 288" in second.stderr
    assert await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter_id) == 288


def test_a_file_without_the_needed_columns_is_a_clear_error(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("foo,bar\n1,2\n")
    result = _run(settings, path)
    assert result.returncode == 1
    assert "needs a meter column and a ts column" in result.stderr


async def test_a_truncated_gzip_file_says_so_and_stores_nothing(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    (meter_id,) = await create_meters(db, 1)
    code = f"IMP-{uuid.uuid4().hex[:8]}"
    await db.execute("UPDATE meters SET code = $2 WHERE id = $1", meter_id, code)
    lines = ["meter,ts,energy"]
    lines += [
        f"{code},2026-02-{1 + i // 96:02d}T{i % 96 // 4:02d}:{i % 4 * 15:02d}:00+08:00,"
        f"{1000 + i * 0.5}"
        for i in range(96 * 3)
    ]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    result = _run(settings, path)
    assert result.returncode == 1
    assert "truncated" in result.stderr
    assert "Aborted" not in result.stderr
    assert await db.fetchval("SELECT count(*) FROM readings WHERE meter_id = $1", meter_id) == 0


async def test_unknown_columns_are_named_as_warnings(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    (meter_id,) = await create_meters(db, 1)
    code = f"IMP-{uuid.uuid4().hex[:8]}"
    await db.execute("UPDATE meters SET code = $2 WHERE id = $1", meter_id, code)
    path = tmp_path / "extra.csv"
    path.write_text(f"meter,ts,energy,notes\n{code},2026-02-01T00:00:00+08:00,5,hello\n")
    result = _run(settings, path)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "'notes' is no reading field" in result.stderr
    assert "accepted 1," in result.stderr

"""`meterhub reference import KIND FILE` as a user runs it: rows written with a progress bar,
bad rows printed by row number with their reason, all or nothing unless --partial, audited
as made at the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import polars as pl
import pytest

from meterhub.settings import Settings

pytestmark = pytest.mark.integration


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MHUB_DATABASE_URL": settings.dsn(), "COLUMNS": "200"}
    meterhub = Path(sys.executable).with_name("meterhub")
    return subprocess.run(
        [str(meterhub), "reference", "import", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_grid_factors_from_a_sheet(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    region = f"cli-{uuid.uuid4().hex[:6]}"
    sheet = tmp_path / "factors.xlsx"
    pl.DataFrame(
        {
            "年份": ["2031", "2032", "20x3"],
            "区域": [region] * 3,
            "类型": ["平均", "average", "average"],
            "排放因子": ["0.52", "0.51", "0.5"],
            "来源": ["test sheet", "test sheet", "test sheet"],
        }
    ).write_excel(sheet)

    refused = _run(settings, "grid-factors", str(sheet))
    assert refused.returncode == 1
    assert "nothing written" in refused.stdout
    assert re.search(r"│\s*4\s*│\s*year\s*│\s*Input should be a valid integer", refused.stdout)
    count = "SELECT count(*) FROM grid_emission_factors WHERE region = $1"
    assert await db.fetchval(count, region) == 0

    done = _run(settings, "grid-factors", str(sheet), "--partial")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "grid-factors: created 2, updated 0" in done.stdout
    assert await db.fetchval(count, region) == 2
    audit = await db.fetchrow(
        "SELECT key_id, detail->>'via' AS via, detail->>'created' AS created FROM audit_log "
        "WHERE action = 'grid_factor.import' ORDER BY id DESC LIMIT 1"
    )
    assert audit is not None and tuple(audit) == (None, "cli", "2")


def test_an_unknown_kind_or_column_is_refused(settings: Settings, tmp_path: Path) -> None:
    sheet = tmp_path / "days.csv"
    sheet.write_text("日期,种类,名称,来源\n2031-01-01,holiday,元旦,test\n", encoding="utf-8")
    wrong_kind = _run(settings, "weather", str(sheet))
    assert wrong_kind.returncode == 2 and "holidays, grid-factors" in wrong_kind.stderr
    wrong_column = _run(settings, "holidays", str(sheet))
    assert wrong_column.returncode == 1 and "unknown column '种类'" in wrong_column.stdout

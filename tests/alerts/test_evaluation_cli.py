"""`meterhub alerts evaluate` and `meterhub alerts import-classes` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import polars as pl
import pytest

from meterhub.settings import Settings
from tests.alerts.evaluation_seed import even, seed_firm
from tests.alerts.test_evaluation_run import below_totals, hand_above_month

pytestmark = pytest.mark.integration

YEAR = 2047


def meterhub(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MHUB_DATABASE_URL": settings.dsn(), "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("meterhub")), "alerts", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_evaluate_and_import_classes(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    above, code = await seed_firm(db, year=YEAR, monthly=hand_above_month)
    await seed_firm(db, year=YEAR, monthly=even(below_totals()), above_scale=False, land_mu=2.0)

    done = meterhub(settings, "evaluate", "--ytd-month", f"{YEAR}-10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{YEAR}-01..{YEAR}-10" in done.stdout and "huangyan-2022" in done.stdout
    assert "above_scale" in done.stdout and "below_scale_small" in done.stdout
    assert "grid factor 0.5153" in done.stdout
    through = await db.fetchval(
        "SELECT through_month FROM evaluations WHERE firm_id = $1 AND year = $2", above, YEAR
    )
    assert through == 10

    mismatch = meterhub(settings, "evaluate", "--year", "2046", "--ytd-month", f"{YEAR}-10")
    assert mismatch.returncode != 0
    unknown = meterhub(settings, "evaluate", "--year", str(YEAR), "--scheme", "nowhere-1")
    assert unknown.returncode == 1 and "no evaluation scheme 'nowhere-1'" in unknown.stdout

    sheet = tmp_path / "classes.xlsx"
    pl.DataFrame({"统一社会信用代码": [code], "年度": [YEAR], "评价类别": ["C"]}).write_excel(sheet)
    imported = meterhub(settings, "import-classes", str(sheet))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "1 classes added" in imported.stdout
    official = await db.fetchval(
        "SELECT class FROM evaluations WHERE firm_id = $1 AND year = $2 AND source = 'official'",
        above,
        YEAR,
    )
    assert official == "C"

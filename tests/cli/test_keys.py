"""`meterhub keys create --role town` as a user runs it: an unknown town is refused with the
list, a full name is stored as the short one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from meterhub.settings import Settings

pytestmark = pytest.mark.integration


def _create(settings: Settings, name: str, scope: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MHUB_DATABASE_URL": settings.dsn(), "COLUMNS": "200"}
    meterhub = Path(sys.executable).with_name("meterhub")
    return subprocess.run(
        [str(meterhub), "keys", "create", "--name", name, "--role", "town", "--scope", scope],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_town_keys_name_a_town(settings: Settings, db: asyncpg.Connection) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    refused = _create(settings, name, "亚特兰蒂斯")
    assert refused.returncode == 1
    assert "unknown town '亚特兰蒂斯'" in refused.stdout
    assert "稠城, 北苑, 稠江" in refused.stdout and "苏溪" in refused.stdout
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE name = $1", name) == 0

    created = _create(settings, name, "苏溪镇")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "(town, 苏溪)" in created.stdout
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("mh_")
    scope = await db.fetchval("SELECT scope FROM api_keys WHERE name = $1", name)
    assert scope == "苏溪"

"""A real `meterhub serve` on 127.0.0.1 for the fuzzers: its log in a file, one key per role,
no collector running, collectors allowed to dial 127.0.0.1 only (so 127.0.0.2 is outside)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from meterhub.settings import Settings
from registry.keys import Role, create_key
from tests.foundation.test_api_process import _free_port, _wait_until_up
from tests.support import create_meters

#: The roles whose keys fuzz every operation (a town key of 苏溪, a grid key of FEED).
ROLES = ("bureau", "grid", "town", "field", "admin")
FEED = "fuzz-feed"
FEED_METERS = 3


@dataclass(frozen=True)
class LiveApi:
    url: str
    log: Path
    keys: dict[str, str]  # role -> key
    dsn: str
    feed_codes: list[str]  # the grid key's meters
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
async def live_api(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveApi]:
    conn = await asyncpg.connect(settings.dsn())
    try:
        scopes = {Role.TOWN: "苏溪", Role.GRID: FEED}
        keys: dict[str, str] = {}
        for role in map(Role, ROLES):
            made = await create_key(conn, name=f"fuzz {role}", role=role, scope=scopes.get(role))
            keys[str(role)] = made.key
        # Something for the ids and listings to find, registered as the API would (a grid-feed
        # meter names its feed).
        listed = await create_meters(conn, 2)
        await conn.execute(
            "UPDATE meters SET address = jsonb_build_object('feed', 'fuzz-elsewhere') "
            "WHERE id = ANY($1::bigint[])",
            listed,
        )
        firm = await conn.fetchval("SELECT max(firm_id) FROM meters")
        codes = [f"fuzz-{n}" for n in range(FEED_METERS)]
        await conn.execute(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, installed_at) "
            "SELECT $1, code, 'electricity', 'grid-feed', jsonb_build_object('feed', $2::text), "
            "'2025-01-01' FROM unnest($3::text[]) AS code",
            firm,
            FEED,
            codes,
        )
    finally:
        await conn.close()
    home = tmp_path_factory.mktemp("fuzz-api")
    port = _free_port()
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_API_HOST": "127.0.0.1",
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(home / "spool"),
        "MHUB_COLLECT_NETWORKS": "127.0.0.1/32",  # 127.0.0.2 is outside
        "MHUB_LOG_LEVEL": "DEBUG",  # the most the log can say: no key in it even then
        "MHUB_INTERVAL_WORKER": "false",
        "MHUB_ALERTS_SCHEDULE": "false",
    }
    log = home / "api.log"
    meterhub = Path(sys.executable).with_name("meterhub")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(meterhub), "serve"], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield LiveApi(url=url, log=log, keys=keys, dsn=settings.dsn(), feed_codes=codes, proc=proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)

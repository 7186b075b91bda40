"""The API in-process (lifespan run for real) over httpx, against the session database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from registry.keys import Role, create_key
from tests.support import in_process_api


@dataclass(frozen=True)
class Keys:
    """One key per role; town keys for two towns, grid keys for two feeds."""

    bureau: str
    admin: str
    field: str
    town: str  # 苏溪
    other_town: str  # 佛堂
    grid: str  # feed "sgcc-yiwu"
    other_grid: str  # feed "other-feed"

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": getattr(self, role)}


TOWN, OTHER_TOWN = "苏溪", "佛堂"
FEED, OTHER_FEED = "sgcc-yiwu", "other-feed"


@pytest.fixture(scope="session")
async def keys(settings: Settings) -> Keys:
    conn = await asyncpg.connect(settings.dsn())
    try:

        async def key(role: Role, scope: str | None = None) -> str:
            return (await create_key(conn, name=f"test {role}", role=role, scope=scope)).key

        return Keys(
            bureau=await key(Role.BUREAU),
            admin=await key(Role.ADMIN),
            field=await key(Role.FIELD),
            town=await key(Role.TOWN, TOWN),
            other_town=await key(Role.TOWN, OTHER_TOWN),
            grid=await key(Role.GRID, FEED),
            other_grid=await key(Role.GRID, OTHER_FEED),
        )
    finally:
        await conn.close()


@pytest.fixture
def api_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"spool_dir": tmp_path / "spool", "batch_max_age": 0.02})


@pytest.fixture
async def client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_api(api_settings) as http:
        yield http


@pytest.fixture
def http(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` under the name the trend tests use."""
    return client

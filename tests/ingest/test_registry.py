"""The sink's in-memory meter registry against the real database: periodic reloads that
skip an unchanged table, and see every edit."""

from __future__ import annotations

import asyncpg
import pytest

from ingest.registry import MeterRegistry
from tests.support import create_meters

pytestmark = pytest.mark.integration


async def test_a_stale_registry_reloads_only_when_the_table_changed(
    db: asyncpg.Connection,
) -> None:
    meters = await create_meters(db, 2, max_power=100)
    registry = MeterRegistry(max_age=0.0)  # stale at every refresh
    await registry.refresh(db)
    loaded = registry.meters
    assert {m: loaded[m].max_power for m in meters} == {meters[0]: 100, meters[1]: 100}

    await registry.refresh(db)
    assert registry.meters is loaded  # same fingerprint: the objects were not rebuilt

    await db.execute("UPDATE meters SET max_power = 250 WHERE id = $1", meters[1])
    await registry.refresh(db)  # no LISTEN here: the fingerprint alone tells the edit
    assert registry.meters is not loaded
    assert registry.meters[meters[1]].max_power == 250

    added = await create_meters(db, 1)
    loaded = registry.meters
    await registry.refresh(db)
    assert added[0] in registry.meters and registry.meters is not loaded


async def test_an_invalidated_registry_reloads_even_when_the_fingerprint_matches(
    db: asyncpg.Connection,
) -> None:
    await create_meters(db, 1)
    registry = MeterRegistry(max_age=3600)
    await registry.refresh(db)
    loaded = registry.meters
    registry.invalidate()  # an edit was announced
    await registry.refresh(db)
    assert registry.meters is not loaded


async def test_a_new_registry_loads_at_its_first_refresh_on_a_freshly_started_machine(
    db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = await create_meters(db, 1)
    # The monotonic clock counts from the machine's boot: a few seconds on a new machine,
    # less than the registry's maximum age.
    monkeypatch.setattr("ingest.registry.time.monotonic", lambda: 5.0)
    registry = MeterRegistry(max_age=60)
    await registry.refresh(db)
    assert meters[0] in registry.meters

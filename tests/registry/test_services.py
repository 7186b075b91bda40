"""The registry services on their own (no HTTP): plain values in, domain errors out, each
with its stable code."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from registry import firms, meters
from registry.errors import (
    ConflictError,
    ForbiddenScopeError,
    InvalidError,
    NotFoundError,
    RegistryError,
    UnknownTownError,
)
from registry.keys import Principal, Role, create_key
from tests.support import credit_code

pytestmark = pytest.mark.integration

INSTALLED = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)


async def bureau(db: asyncpg.Connection) -> Principal:
    return (await create_key(db, name="services", role=Role.BUREAU, scope=None)).principal


def firm_in(town: str = "苏溪") -> firms.FirmIn:
    return firms.FirmIn(
        credit_code=credit_code(uuid.uuid4().int % 10_000_000),
        name="义乌市服务测试有限公司",
        industry="C1711",
        town=town,
    )


def meter_in(firm_id: int, code: str | None = None) -> meters.MeterIn:
    return meters.MeterIn(
        firm_id=firm_id,
        code=code or f"svc-{uuid.uuid4().hex[:10]}",
        protocol="grid-feed",
        address={"feed": "sgcc-yiwu"},
        installed_at=INSTALLED,
    )


async def test_firm_errors(db: asyncpg.Connection) -> None:
    who = await bureau(db)
    firm = firm_in("苏溪镇")
    created = await firms.create_firm(db, principal=who, firm=firm)
    assert created.town == "苏溪"
    with pytest.raises(ConflictError) as conflict:
        await firms.create_firm(db, principal=who, firm=firm)
    assert conflict.value.code == "conflict"
    with pytest.raises(NotFoundError) as missing:
        await firms.get_firm(db, 999_999_999)
    assert missing.value.code == "not_found"
    with pytest.raises(UnknownTownError) as unknown:
        await firms.create_firm(db, principal=who, firm=firm_in("亚特兰蒂斯"))
    assert unknown.value.code == "unknown_town"
    assert isinstance(unknown.value, InvalidError)
    assert unknown.value.extra["valid_towns"][:2] == ["稠城", "北苑"]
    with pytest.raises(UnknownTownError):
        await firms.update_firm(
            db, principal=who, firm_id=created.id, patch=firms.FirmPatch(town="亚特兰蒂斯")
        )
    patched = await firms.update_firm(
        db, principal=who, firm_id=created.id, patch=firms.FirmPatch(town="稠城街道")
    )
    assert patched.town == "稠城"


async def test_scope_is_a_domain_error(db: asyncpg.Connection, settings: Settings) -> None:
    who = await bureau(db)
    firm = await firms.create_firm(db, principal=who, firm=firm_in("佛堂"))
    key = await create_key(db, name="svc town", role=Role.TOWN, scope="苏溪镇")
    assert key.principal.scope == "苏溪"
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=1)
    try:
        with pytest.raises(ForbiddenScopeError) as forbidden:
            await firms.readable_firm(pool, principal=key.principal, firm_id=firm.id)
        assert forbidden.value.code == "forbidden_scope"
        bureau_sees = await firms.readable_firm(pool, principal=who, firm_id=firm.id)
        assert bureau_sees.id == firm.id
    finally:
        await pool.close()


async def test_meter_errors(db: asyncpg.Connection) -> None:
    who = await bureau(db)
    firm = await firms.create_firm(db, principal=who, firm=firm_in())
    with pytest.raises(InvalidError) as no_firm:
        await meters.create_meter(db, principal=who, meter=meter_in(999_999_999))
    assert no_firm.value.code == "invalid"
    meter = await meters.create_meter(db, principal=who, meter=meter_in(firm.id))
    with pytest.raises(ConflictError):
        await meters.create_meter(db, principal=who, meter=meter_in(firm.id, meter.code))
    with pytest.raises(InvalidError):
        early = meters.Replacement(code="svc-early", at=INSTALLED - timedelta(1))
        await meters.replace_meter(db, principal=who, meter_id=meter.id, swap=early)
    swap = meters.Replacement(code=f"svc-{uuid.uuid4().hex[:10]}", at=INSTALLED + timedelta(9))
    new = await meters.replace_meter(db, principal=who, meter_id=meter.id, swap=swap)
    assert new.replaces_meter_id == meter.id
    with pytest.raises(ConflictError):
        await meters.replace_meter(db, principal=who, meter_id=meter.id, swap=swap)
    with pytest.raises(NotFoundError):
        await meters.get_meter(db, 999_999_999)


async def test_key_rules(db: asyncpg.Connection) -> None:
    with pytest.raises(InvalidError):
        await create_key(db, name="x", role=Role.GRID, scope=None)
    with pytest.raises(InvalidError):
        await create_key(db, name="x", role=Role.BUREAU, scope="苏溪")
    with pytest.raises(UnknownTownError, match="valid towns: 稠城, 北苑"):
        await create_key(db, name="x", role=Role.TOWN, scope="亚特兰蒂斯")
    stored = await db.fetchval("SELECT count(*) FROM api_keys WHERE name = 'x'")
    assert stored == 0


def test_every_registry_error_is_one_tree_with_its_own_code() -> None:
    classes = [ConflictError, ForbiddenScopeError, InvalidError, NotFoundError, UnknownTownError]
    assert all(issubclass(c, RegistryError) for c in classes)
    assert len({c.code for c in [RegistryError, *classes]}) == len(classes) + 1


def test_the_registry_imports_neither_the_api_nor_fastapi() -> None:
    check = (
        "import sys, registry.firms, registry.meters, registry.imports, registry.keys, "
        "registry.towns, registry.output, registry.sheets, registry.scope; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('api', 'fastapi', 'starlette')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

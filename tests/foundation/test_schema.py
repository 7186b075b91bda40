from __future__ import annotations

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.uscc import ALPHABET, check_character, is_valid

pytestmark = pytest.mark.integration

VALID_CODE = "91350100M000100Y43"


def test_known_code_is_valid() -> None:
    assert is_valid(VALID_CODE)
    assert not is_valid(VALID_CODE[:-1] + "4")
    assert not is_valid("91350100M000100Y4")
    assert not is_valid("91350100M000100YI3")  # I is not in the alphabet


async def test_python_and_database_validators_agree(db: asyncpg.Connection) -> None:
    bodies = st.text(alphabet=ALPHABET, min_size=17, max_size=17)
    samples: list[str] = []

    @settings(max_examples=200, database=None)
    @given(body=bodies, last=st.sampled_from(ALPHABET), use_check=st.booleans())
    def collect(body: str, last: str, use_check: bool) -> None:
        samples.append(body + (check_character(body) if use_check else last))

    collect()
    rows = await db.fetch("SELECT c, uscc_is_valid(c) AS ok FROM unnest($1::text[]) AS c", samples)
    assert {r["c"]: r["ok"] for r in rows} == {code: is_valid(code) for code in samples}


async def test_firm_with_bad_credit_code_is_refused(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO firms (credit_code, name, industry, town) VALUES ($1, 'x', 'C17', '稠城')",
            VALID_CODE[:-1] + "0",
        )


async def test_meter_address_must_fit_its_protocol(db: asyncpg.Connection) -> None:
    outer = db.transaction()
    await outer.start()
    try:
        firm = await db.fetchval(
            "INSERT INTO firms (credit_code, name, industry, town) "
            "VALUES ($1, '义乌测试针织厂', 'C1711', '苏溪') RETURNING id",
            VALID_CODE,
        )
        await db.execute(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, installed_at) "
            "VALUES ($1, 'M-1', 'electricity', 'dlt645', '{\"address\": \"000102030425\"}', now())",
            firm,
        )
        assert await db.fetchval("SELECT unit FROM meters WHERE code = 'M-1'") == "kWh"
        with pytest.raises(asyncpg.CheckViolationError):
            async with db.transaction():
                await db.execute(
                    "INSERT INTO meters (firm_id, code, utility, protocol, address, installed_at) "
                    "VALUES ($1, 'M-2', 'electricity', 'dlt645', '{\"address\": \"12\"}', now())",
                    firm,
                )
    finally:
        await outer.rollback()

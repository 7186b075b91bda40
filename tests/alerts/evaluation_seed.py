"""Firms with a year of monthly output figures and monthly energy rollups, written at the
level the evaluation reads (each test uses a year of its own: runs replace a whole year)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import asyncpg
import polars as pl

from alerts.annual import YEAR
from meterhub.reading import LOCAL_TZ
from tests.support import credit_code

FIGURES = ("output_value", "value_added", "tax_paid", "employees", "rnd_spend", "main_revenue")
ENERGY = {"kwh": "electricity", "gas_m3": "gas", "water_t": "water"}
Month = Callable[[int], Mapping[str, float | None]]
#: Firm ids given explicitly, far above the identity sequence: the firms seeded here do
#: not shift the ids other tests' firms get (tests/alerts/city.py derives its figures
#: from firm ids, and its expected findings depend on them).
_ids = itertools.count(10**12)


def even(totals: Mapping[str, float | None], months: int = 12) -> Month:
    """Each month 1/``months`` of ``totals`` (employees as given)."""

    def month(_: int) -> dict[str, float | None]:
        return {k: (v if k == "employees" or v is None else v / months) for k, v in totals.items()}

    return month


async def seed_firm(
    db: asyncpg.Connection,
    *,
    year: int,
    monthly: Month,
    months: int = 12,
    town: str = "苏溪",
    industry: str = "C2921",
    above_scale: bool = True,
    land_mu: float | None = 20.0,
) -> tuple[int, str]:
    """A new firm with figures and energy for January..``months`` of ``year``: id, code."""
    code = credit_code(uuid.uuid4().int % 10_000_000)
    firm = await db.fetchval(
        "INSERT INTO firms (id, credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        next(_ids),
        code,
        f"评价企业 {uuid.uuid4().hex[:6]}",
        industry,
        town,
        land_mu,
        above_scale,
    )
    for m in range(1, months + 1):
        values: dict[str, Any] = dict(monthly(m))
        first = date(year, m, 1)
        await db.execute(
            "INSERT INTO output_figures (firm_id, month, output_value, value_added, tax_paid, "
            "employees, rnd_spend, main_revenue, emissions_t) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            firm,
            first,
            *(values.get(k) for k in FIGURES[:3]),
            None if values.get("employees") is None else int(values["employees"]),
            *(values.get(k) for k in FIGURES[4:]),
            values.get("emissions_t"),
        )
        for key, utility in ENERGY.items():
            if values.get(key) is not None:
                await db.execute(
                    "INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, "
                    "meters) VALUES ('month', $1, $2, $3, $4, 1)",
                    firm,
                    utility,
                    datetime(year, m, 1, tzinfo=LOCAL_TZ),
                    values[key],
                )
    return firm, code


def year(*firms: Mapping[str, Any]) -> pl.DataFrame:
    """Firms' years for the pure tests: every column of `YEAR`, null unless given (firm
    ids 1, 2, ..., industry C2921, town 苏溪, twelve months)."""
    rows = []
    for n, firm in enumerate(firms, start=1):
        row: dict[str, Any] = dict.fromkeys(YEAR.names())
        row |= {"firm_id": n, "town": "苏溪", "industry": "C2921", "months": 12}
        rows.append(row | dict(firm))
    return pl.DataFrame(rows, schema=YEAR)

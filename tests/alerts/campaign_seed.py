"""Building blocks for the campaign tests: firms, cases, metered months and output figures
written straight into the test database (what the notices, the interval worker and the
figure import would have stored)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta

import asyncpg

from alerts import campaign_targets
from alerts.campaign_targets import CampaignConfig
from tests.support import credit_code

WEEK = date(2031, 12, 1)  # a Monday no other test uses: "now" is 2030-12..2031-11
START = date(2031, 1, 1)  # count cases from here on, so other tests' cases never count


def config() -> CampaignConfig:
    base = campaign_targets.load()
    return dataclasses.replace(base, plan=dataclasses.replace(base.plan, count_from=START))


async def firm(
    db: asyncpg.Connection, name: str, *, town: str, land_mu: float | None, above: bool = True
) -> int:
    firm_id: int = await db.fetchval(
        "INSERT INTO firms (credit_code, name, industry, town, land_mu, above_scale) "
        "VALUES ($1, $2, 'C1762', $3, $4, $5) RETURNING id",
        credit_code(uuid.uuid4().int % 10_000_000),
        f"{name}{uuid.uuid4().hex[:6]}",
        town,
        land_mu,
        above,
    )
    return firm_id


async def case(
    db: asyncpg.Connection,
    firm_id: int,
    problem: str,
    *,
    opened: date,
    resolved: date | None = None,
    basis: str = "clean_4_weeks",
) -> int:
    town = await db.fetchval("SELECT town FROM firms WHERE id = $1", firm_id)
    case_id: int = await db.fetchval(
        "INSERT INTO notice_cases (firm_id, problem, town, status, first_week, last_week, "
        "episode_week, deadline, resolved_week, resolved_basis) "
        "VALUES ($1, $2, $3, $4, $5::date, $6, $5::date, $5::date + 83, $7, $8) RETURNING id",
        firm_id,
        problem,
        town,
        "issued" if resolved is None else "resolved",
        opened,
        resolved or opened,
        resolved,
        basis if resolved is not None else None,
    )
    return case_id


def months(first: date, count: int) -> list[date]:
    out, month = [], first
    for _ in range(count):
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


async def metered(
    db: asyncpg.Connection, firm_id: int, first: date, count: int, kwh: float, complete: bool = True
) -> None:
    """``count`` months of ``kwh`` each from ``first`` (complete, or with 1000 of 2880
    intervals)."""
    for month in months(first, count):
        await db.execute(
            "INSERT INTO firm_month_features (firm_id, month, kwh, intervals, expected) "
            "VALUES ($1, $2, $3, $4, 2880)",
            firm_id,
            month,
            kwh,
            2880 if complete else 1000,
        )


async def figures(
    db: asyncpg.Connection,
    firm_id: int,
    first: date,
    count: int,
    *,
    output: float,
    value_added: float,
    tax: float,
) -> None:
    for month in months(first, count):
        await db.execute(
            "INSERT INTO output_figures (firm_id, month, output_value, value_added, tax_paid) "
            "VALUES ($1, $2, $3, $4, $5)",
            firm_id,
            month,
            output,
            value_added,
            tax,
        )

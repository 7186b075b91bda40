"""Putting what simulated firms report into the registry: monthly output figures (through
the import's own upsert, `registry.output.UPSERT`), list memberships, projects and official
evaluation classes. Idempotent: running it again writes the same rows.

Lists, projects and classes are the city file's: rows of the city's firms with source
``simulator`` (official classes: the firm's ``official`` rows) are replaced by them.

Example::

    book = DailyEnergy.of(fleet.meters, first=date(2024, 8, 1), end=date(2026, 12, 1))
    summary = await register_firm_data(conn, city, book=book, months=month_range(...))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from registry.output import UPSERT, OutputFigureIn, upsert_values
from simulators.config import CityConfig, FirmSpec
from simulators.figures import DailyEnergy, output_figures

SOURCE = "simulator"


@dataclass(slots=True)
class FirmDataSummary:
    figures: int = 0
    lists: int = 0
    projects: int = 0
    classes: int = 0


def cohort(firm: FirmSpec) -> str:
    """The per-mu evaluation cohort (table ``evaluations``) the firm falls in."""
    if firm.above_scale:
        return "above_scale"
    return "below_scale_3mu" if (firm.land_mu or 0) >= 3 else "below_scale_small"


async def register_firm_data(
    conn: asyncpg.Connection, city: CityConfig, *, book: DailyEnergy, months: Sequence[date]
) -> FirmDataSummary:
    """Upsert the city's output figures over ``months`` (from the electricity in ``book``)
    and replace its firms' lists, projects and official classes, in one transaction."""
    rows = await conn.fetch(
        "SELECT credit_code, id FROM firms WHERE credit_code = ANY($1::text[])",
        [f.credit_code for f in city.firms],
    )
    ids = {r["credit_code"]: int(r["id"]) for r in rows}
    firms = [f for f in city.firms if f.credit_code in ids]
    summary = FirmDataSummary()
    figures = [f for f in output_figures(city, book, months=months) if f.credit_code in ids]
    async with conn.transaction():
        values = []
        for f in figures:
            figure = OutputFigureIn(
                credit_code=f.credit_code,
                month=f.month,
                output_value=f.output_value,
                value_added=f.value_added,
                tax_paid=f.tax_paid,
                employees=f.employees,
                rnd_spend=f.rnd_spend,
                main_revenue=f.main_revenue,
                emissions_t=f.emissions_t,
            )
            values.append(upsert_values(ids[f.credit_code], figure))
        await conn.executemany(UPSERT, values)
        summary.figures = len(values)
        firm_ids = [ids[f.credit_code] for f in firms]
        await conn.execute(
            "DELETE FROM firm_lists WHERE firm_id = ANY($1::bigint[]) AND source = $2",
            firm_ids,
            SOURCE,
        )
        await conn.execute(
            "DELETE FROM firm_projects WHERE firm_id = ANY($1::bigint[]) AND source = $2",
            firm_ids,
            SOURCE,
        )
        await conn.execute(
            "DELETE FROM evaluations WHERE firm_id = ANY($1::bigint[]) AND source = 'official'",
            firm_ids,
        )
        lists = [
            (ids[f.credit_code], m.list, m.since, m.until, SOURCE) for f in firms for m in f.lists
        ]
        await conn.executemany(
            "INSERT INTO firm_lists (firm_id, list, since, until, source) "
            "VALUES ($1, $2, $3, $4, $5)",
            lists,
        )
        projects = [
            (ids[f.credit_code], p.name, p.year, p.design_tce, SOURCE)
            for f in firms
            for p in f.projects
        ]
        await conn.executemany(
            "INSERT INTO firm_projects (firm_id, name, commissioned_year, design_tce, source) "
            "VALUES ($1, $2, $3, $4, $5)",
            projects,
        )
        classes = [
            (ids[f.credit_code], c.year, cohort(f), c.class_) for f in firms for c in f.classes
        ]
        await conn.executemany(
            "INSERT INTO evaluations (firm_id, year, source, cohort, class) "
            "VALUES ($1, $2, 'official', $3, $4)",
            classes,
        )
        summary.lists, summary.projects, summary.classes = len(lists), len(projects), len(classes)
    return summary

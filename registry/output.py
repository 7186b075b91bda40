"""Monthly output figures (产值, 增加值, 税收 ...) as the bureau reports them per firm."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import BaseModel, Field, field_validator

from meterhub.db import Conn

_MONTH = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})月?(?:[-/.]\d{1,2}日?)?$")


class OutputFigureIn(BaseModel):
    credit_code: str
    month: date = Field(description="the first day of the month")
    output_value: Decimal | None = Field(default=None, ge=0)
    value_added: Decimal | None = None
    tax_paid: Decimal | None = Field(default=None, ge=0)
    employees: int | None = Field(default=None, ge=0)
    rnd_spend: Decimal | None = Field(default=None, ge=0)
    main_revenue: Decimal | None = Field(default=None, ge=0)
    emissions_t: Decimal | None = Field(
        default=None, ge=0, description="pollutant emissions of the month, tonnes"
    )

    @field_validator("month", mode="before")
    @classmethod
    def _month(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _MONTH.match(value.strip())
            if match is None:
                raise ValueError("month must look like 2026-03 or 2026年3月")
            return date(int(match[1]), int(match[2]), 1)
        return value


#: One firm's month, replaced when imported again; arguments from `upsert_values`.
UPSERT = """
INSERT INTO output_figures (firm_id, month, output_value, value_added, tax_paid, employees,
                            rnd_spend, main_revenue, emissions_t)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (firm_id, month) DO UPDATE SET output_value = EXCLUDED.output_value,
    value_added = EXCLUDED.value_added, tax_paid = EXCLUDED.tax_paid,
    employees = EXCLUDED.employees, rnd_spend = EXCLUDED.rnd_spend,
    main_revenue = EXCLUDED.main_revenue, emissions_t = EXCLUDED.emissions_t,
    imported_at = now()
RETURNING xmax = 0
"""


def upsert_values(firm_id: int, figure: OutputFigureIn) -> tuple[Any, ...]:
    """``figure``'s values in the order of `UPSERT`'s parameters."""
    return (
        firm_id,
        figure.month,
        figure.output_value,
        figure.value_added,
        figure.tax_paid,
        figure.employees,
        figure.rnd_spend,
        figure.main_revenue,
        figure.emissions_t,
    )


async def list_output_figures(conn: Conn | asyncpg.Pool, firm_id: int) -> list[dict[str, Any]]:
    """A firm's monthly figures, oldest first."""
    rows = await conn.fetch(
        "SELECT month, output_value, value_added, tax_paid, employees, rnd_spend, main_revenue, "
        "emissions_t "
        "FROM output_figures WHERE firm_id = $1 ORDER BY month",
        firm_id,
    )
    return [dict(r) for r in rows]

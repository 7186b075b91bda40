"""Bulk imports from the bureau's sheets: firms and monthly output figures.

An import is all-or-nothing unless the caller asks for ``partial``: then the valid rows
are written and the others reported. Either way every bad row is reported with its
spreadsheet row number and the reason.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from api import audit
from api.firms import INSERT, FirmIn, insert_values
from api.keys import Principal
from api.sheets import Sheet
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

    @field_validator("month", mode="before")
    @classmethod
    def _month(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _MONTH.match(value.strip())
            if match is None:
                raise ValueError("month must look like 2026-03 or 2026年3月")
            return date(int(match[1]), int(match[2]), 1)
        return value


_UPSERT_FIRM = f"""
{INSERT}
ON CONFLICT (credit_code) DO UPDATE SET name = EXCLUDED.name, industry = EXCLUDED.industry,
    town = EXCLUDED.town, land_mu = EXCLUDED.land_mu, above_scale = EXCLUDED.above_scale,
    tags = EXCLUDED.tags, updated_at = now()
RETURNING xmax = 0
"""
_UPSERT_OUTPUT = """
INSERT INTO output_figures (firm_id, month, output_value, value_added, tax_paid, employees,
                            rnd_spend, main_revenue)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (firm_id, month) DO UPDATE SET output_value = EXCLUDED.output_value,
    value_added = EXCLUDED.value_added, tax_paid = EXCLUDED.tax_paid,
    employees = EXCLUDED.employees, rnd_spend = EXCLUDED.rnd_spend,
    main_revenue = EXCLUDED.main_revenue, imported_at = now()
RETURNING xmax = 0
"""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    written: bool = True


async def _upsert(conn: Conn, report: ImportReport, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Run an upsert per row; ``xmax = 0`` tells a new row from an updated one."""
    for args in rows:
        if await conn.fetchval(sql, *args):
            report.created += 1
        else:
            report.updated += 1


async def _write(
    conn: Conn,
    principal: Principal,
    report: ImportReport,
    *,
    partial: bool,
    sql: str,
    rows: list[tuple[Any, ...]],
    action: str,
    target: str,
    **detail: Any,
) -> ImportReport:
    """Upsert ``rows`` (the good ones) with ``sql`` and audit it, unless bad rows make an
    all-or-nothing import write nothing."""
    if report.errors and not partial:
        report.written = False
        return report
    async with conn.transaction():
        await _upsert(conn, report, sql, rows)
        counts = {"created": report.created, "updated": report.updated}
        await audit.record(conn, principal, action=action, target=target, detail=counts | detail)
    return report


def _error(row_number: int, column: str | None, message: str) -> dict[str, Any]:
    return {"row": row_number, "column": column, "message": message}


def _errors(row_number: int, exc: ValidationError) -> list[dict[str, Any]]:
    return [
        _error(row_number, ".".join(map(str, e["loc"])) or None, e["msg"]) for e in exc.errors()
    ]


def _firm_values(row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = dict(row)
    if "above_scale" in values:
        values["above_scale"] = values["above_scale"].lower() in ("1", "true", "yes", "是", "y")
    if "tags" in values:
        values["tags"] = [t.strip() for t in re.split(r"[;；,，]", values["tags"]) if t.strip()]
    if "land_mu" in values:
        with contextlib.suppress(InvalidOperation):  # else pydantic reports it
            values["land_mu"] = Decimal(values["land_mu"])
    return values


async def import_firms(
    conn: Conn, principal: Principal, sheet: Sheet, *, partial: bool
) -> ImportReport:
    report, firms = ImportReport(), []
    seen: dict[str, int] = {}
    for number, row in zip(sheet.row_numbers, sheet.rows, strict=True):
        try:
            firm = FirmIn(**_firm_values(row))
        except ValidationError as exc:
            report.errors += _errors(number, exc)
            continue
        if firm.credit_code in seen:
            message = f"same code as row {seen[firm.credit_code]}"
            report.errors.append(_error(number, "credit_code", message))
            continue
        seen[firm.credit_code] = number
        firms.append(firm)
    return await _write(
        conn,
        principal,
        report,
        partial=partial,
        sql=_UPSERT_FIRM,
        rows=[insert_values(f) for f in firms],
        action="firm.import",
        target="firms",
        rejected_rows=len({e["row"] for e in report.errors}),
    )


async def import_output_figures(
    conn: Conn, principal: Principal, sheet: Sheet, *, partial: bool
) -> ImportReport:
    report = ImportReport()
    codes = {row.get("credit_code", "").strip().upper() for row in sheet.rows}
    rows = await conn.fetch(
        "SELECT credit_code, id FROM firms WHERE credit_code = ANY($1::text[])", list(codes)
    )
    firm_ids: dict[str, int] = {r["credit_code"]: r["id"] for r in rows}
    figures: list[tuple[int, OutputFigureIn]] = []
    for number, row in zip(sheet.row_numbers, sheet.rows, strict=True):
        try:
            figure = OutputFigureIn(**row)  # type: ignore[arg-type]
        except ValidationError as exc:
            report.errors += _errors(number, exc)
            continue
        firm_id = firm_ids.get(figure.credit_code.strip().upper())
        if firm_id is None:
            message = f"no registered firm {figure.credit_code}"
            report.errors.append(_error(number, "credit_code", message))
            continue
        figures.append((firm_id, figure))
    values = [
        (
            firm_id,
            f.month,
            f.output_value,
            f.value_added,
            f.tax_paid,
            f.employees,
            f.rnd_spend,
            f.main_revenue,
        )
        for firm_id, f in figures
    ]
    return await _write(
        conn,
        principal,
        report,
        partial=partial,
        sql=_UPSERT_OUTPUT,
        rows=values,
        action="output.import",
        target="output_figures",
    )

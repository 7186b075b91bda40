"""Bulk imports from the bureau's sheets: firms and monthly output figures.

An import is all-or-nothing unless the caller asks for ``partial``: then the valid rows
are written and the others reported. Either way every bad row is reported with its
spreadsheet row number and the reason.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from meterhub.db import Conn
from registry import audit
from registry.errors import UnknownTownError
from registry.firms import FirmIn, upsert_firm
from registry.keys import Principal
from registry.output import UPSERT as _UPSERT_OUTPUT
from registry.output import OutputFigureIn, upsert_values
from registry.sheets import Sheet
from registry.towns import TownNames, town_names


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    written: bool = True


#: Writes one row; True if it was new (an unchanged row counts as updated).
Writer = Callable[[], Awaitable[bool]]


def _firm_writer(conn: Conn, firm: FirmIn, towns: TownNames) -> Writer:
    async def write() -> bool:
        _, outcome = await upsert_firm(conn, firm, towns=towns)
        return outcome == "added"

    return write


def _output_writer_of(conn: Conn, values: tuple[Any, ...]) -> Writer:
    async def write() -> bool:
        return bool(await conn.fetchval(_UPSERT_OUTPUT, *values))

    return write


async def _write(
    conn: Conn,
    principal: Principal | None,
    report: ImportReport,
    *,
    partial: bool,
    writers: list[Writer],
    action: str,
    target: str,
    **detail: Any,
) -> ImportReport:
    """Run ``writers`` (one per good row) and audit it, unless bad rows make an
    all-or-nothing import write nothing."""
    if report.errors and not partial:
        report.written = False
        return report
    async with conn.transaction():
        for write in writers:
            if await write():
                report.created += 1
            else:
                report.updated += 1
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
    conn: Conn, *, principal: Principal, sheet: Sheet, partial: bool
) -> ImportReport:
    report, firms = ImportReport(), []
    seen: dict[str, int] = {}
    towns = await town_names(conn)
    for number, row in zip(sheet.row_numbers, sheet.rows, strict=True):
        try:
            firm = FirmIn(**_firm_values(row))
            firm.town = towns.canonical(firm.town)
        except ValidationError as exc:
            report.errors += _errors(number, exc)
            continue
        except UnknownTownError as exc:
            report.errors.append(_error(number, "town", exc.message))
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
        writers=[_firm_writer(conn, f, towns) for f in firms],
        action="firm.import",
        target="firms",
        rejected_rows=len({e["row"] for e in report.errors}),
    )


async def import_output_figures(
    conn: Conn, *, principal: Principal, sheet: Sheet, partial: bool
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
    return await _write(
        conn,
        principal,
        report,
        partial=partial,
        writers=[_output_writer_of(conn, upsert_values(i, f)) for i, f in figures],
        action="output.import",
        target="output_figures",
    )

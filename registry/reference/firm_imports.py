"""Imports of firm attributes by credit code: dated list memberships and projects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from meterhub.db import Conn
from registry.imports import ImportReport, Writer, _error, _errors
from registry.keys import Principal
from registry.reference.errors import MembershipOverlapError
from registry.reference.imports import Progress, finish, sheet_rows
from registry.reference.lists import (
    Membership,
    MembershipIn,
    check_overlap,
    memberships_of,
    write_membership,
)
from registry.reference.projects import ProjectIn, write_project
from registry.sheets import Sheet


async def _firm_ids(conn: Conn, sheet: Sheet) -> dict[str, int]:
    codes = sorted({row.get("credit_code", "").strip().upper() for row in sheet.rows})
    rows = await conn.fetch(
        "SELECT credit_code, id FROM firms WHERE credit_code = ANY($1::text[])", codes
    )
    return {r["credit_code"]: r["id"] for r in rows}


def _firm_of(
    number: int, row: dict[str, str], firm_ids: Mapping[str, int], report: ImportReport
) -> int | None:
    """The registered firm a row names by credit code (popped from ``row``), else None with
    the row's error reported."""
    code = row.pop("credit_code", "").strip().upper()
    firm_id = firm_ids.get(code)
    if firm_id is None:
        message = f"no registered firm {code}" if code else "Field required"
        report.errors.append(_error(number, "credit_code", message))
    return firm_id


async def import_lists(
    conn: Conn,
    *,
    principal: Principal | None,
    sheet: Sheet,
    partial: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """List memberships by credit code; a firm's list and since identify a membership (its
    until, source and note are updated when imported again); overlaps are row errors."""
    report = ImportReport()
    firm_ids = await _firm_ids(conn, sheet)
    held: dict[int, list[Membership]] = {}
    for m in await memberships_of(conn, list(firm_ids.values())):
        held.setdefault(m.firm_id, []).append(m)
    good: list[tuple[int, MembershipIn]] = []
    seen: dict[tuple[int, str, Any], int] = {}
    for number, row in sheet_rows(sheet):
        firm_id = _firm_of(number, row, firm_ids, report)
        try:
            membership = MembershipIn(**row)  # type: ignore[arg-type]
        except ValidationError as exc:
            report.errors += _errors(number, exc)
            continue
        if firm_id is None:
            continue
        key = (firm_id, membership.list, membership.since)
        if key in seen:
            report.errors.append(_error(number, "since", f"same membership as row {seen[key]}"))
            continue
        try:
            check_overlap(firm_id, membership, held.get(firm_id, []))
        except MembershipOverlapError as exc:
            report.errors.append(_error(number, "since", exc.message))
            continue
        seen[key] = number
        others = [m for m in held.get(firm_id, []) if (m.list, m.since) != key[1:]]
        held[firm_id] = [*others, Membership(firm_id=firm_id, **membership.model_dump())]
        good.append((firm_id, membership))

    def writer(firm_id: int, membership: MembershipIn) -> Writer:
        return lambda: write_membership(conn, firm_id, membership)

    return await finish(
        conn,
        principal,
        report,
        partial=partial,
        writers=[(writer(f, m), 1) for f, m in good],
        progress=progress,
        action="firm.list.import",
        target="firm_lists",
    )


async def import_projects(
    conn: Conn,
    *,
    principal: Principal | None,
    sheet: Sheet,
    partial: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Projects by credit code and name (updated when imported again)."""
    report = ImportReport()
    firm_ids = await _firm_ids(conn, sheet)
    good: list[tuple[int, ProjectIn]] = []
    seen: dict[tuple[int, str], int] = {}
    for number, row in sheet_rows(sheet):
        firm_id = _firm_of(number, row, firm_ids, report)
        try:
            project = ProjectIn(**row)  # type: ignore[arg-type]
        except ValidationError as exc:
            report.errors += _errors(number, exc)
            continue
        if firm_id is None:
            continue
        if (firm_id, project.name) in seen:
            message = f"same project as row {seen[(firm_id, project.name)]}"
            report.errors.append(_error(number, "name", message))
            continue
        seen[(firm_id, project.name)] = number
        good.append((firm_id, project))

    def writer(firm_id: int, project: ProjectIn) -> Writer:
        return lambda: write_project(conn, firm_id, project)

    return await finish(
        conn,
        principal,
        report,
        partial=partial,
        writers=[(writer(f, p), 1) for f, p in good],
        progress=progress,
        action="firm.project.import",
        target="firm_projects",
    )

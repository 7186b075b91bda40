"""Reference-data imports from the bureau's sheets, one per kind (`KINDS`): all-or-nothing
unless ``partial``, every bad row reported with its spreadsheet row number and reason,
audited like the registry's imports (`registry.imports`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from meterhub.db import Conn
from registry.imports import ImportReport, Writer, _error, _errors, _write
from registry.keys import Principal
from registry.reference import columns
from registry.reference.cuts import parse_cuts
from registry.reference.schemes import Indicator, Scheme, write_scheme
from registry.reference.tables import Table, write_row
from registry.sheets import Sheet

#: Told how many sheet rows were just written (a progress bar).
Progress = Callable[[int], None]


class Importer(Protocol):
    def __call__(
        self,
        conn: Conn,
        *,
        principal: Principal | None,
        sheet: Sheet,
        partial: bool,
        progress: Progress | None = None,
    ) -> Awaitable[ImportReport]: ...


def sheet_rows(sheet: Sheet) -> Iterator[tuple[int, dict[str, str]]]:
    return zip(sheet.row_numbers, (dict(r) for r in sheet.rows), strict=True)


def counted(write: Writer, rows: int, progress: Progress | None) -> Writer:
    """``write``, telling ``progress`` of its ``rows`` once it is done."""

    async def counted() -> bool:
        created = await write()
        if progress is not None:
            progress(rows)
        return created

    return counted


async def finish(
    conn: Conn,
    principal: Principal | None,
    report: ImportReport,
    *,
    partial: bool,
    writers: list[tuple[Writer, int]],
    progress: Progress | None,
    action: str,
    target: str,
) -> ImportReport:
    """Write the good rows (each writer with the sheet rows it covers) as `_write` does."""
    via = {"via": "cli"} if principal is None else {}
    return await _write(
        conn,
        principal,
        report,
        partial=partial,
        writers=[counted(w, rows, progress) for w, rows in writers],
        action=action,
        target=target,
        rejected_rows=len({e["row"] for e in report.errors}),
        **via,
    )


def table_importer(table: Table[Any]) -> Importer:
    """The import of a flat reference table: rows by their key, updated when imported again."""

    async def run(
        conn: Conn,
        *,
        principal: Principal | None,
        sheet: Sheet,
        partial: bool,
        progress: Progress | None = None,
    ) -> ImportReport:
        report, good, seen = ImportReport(), [], dict[tuple[Any, ...], int]()
        for number, row in sheet_rows(sheet):
            try:
                item: BaseModel = table.model(**row)
            except ValidationError as exc:
                report.errors += _errors(number, exc)
                continue
            key = table.row_values(item)[: len(table.keys)]
            if key in seen:
                message = f"same {', '.join(table.keys)} as row {seen[key]}"
                report.errors.append(_error(number, None, message))
                continue
            seen[key] = number
            good.append(item)

        def writer(item: BaseModel) -> Writer:
            return lambda: write_row(conn, table, item)

        return await finish(
            conn,
            principal,
            report,
            partial=partial,
            writers=[(writer(i), 1) for i in good],
            progress=progress,
            action=f"{table.noun}.import",
            target=table.name,
        )

    return run


_SCHEME_FIELD = {"id": "scheme", "name": "scheme_name"}
_INDICATOR_FIELDS = frozenset(Indicator.model_fields)


def _scheme(
    scheme_id: str, rows: list[tuple[int, dict[str, str]]], report: ImportReport
) -> Scheme | None:
    """One scheme from its rows (one indicator each), or None with its errors reported."""
    head: dict[str, tuple[int, str]] = {}
    failed = False
    for number, row in rows:
        for field in columns.SCHEME_FIELDS:
            if field not in row:
                continue
            if field in head and head[field][1] != row[field]:
                message = f"differs from {head[field][1]!r} in row {head[field][0]}"
                report.errors.append(_error(number, field, message))
                failed = True
            head.setdefault(field, (number, row[field]))
    values: dict[str, Any] = {f: v for f, (_, v) in head.items() if f != "scheme_name"}
    values |= {"id": scheme_id, "name": head.get("scheme_name", (0, None))[1]}
    if "cuts" in head:
        try:
            values["cuts"] = parse_cuts(head["cuts"][1])
        except ValueError as exc:
            report.errors.append(_error(head["cuts"][0], "cuts", str(exc)))
            return None
    values["indicators"] = [{k: v for k, v in r.items() if k in _INDICATOR_FIELDS} for _, r in rows]
    try:
        scheme = Scheme(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        for e in exc.errors():
            loc = list(e["loc"])
            number, column = rows[0][0], ".".join(map(str, loc)) or None
            if len(loc) > 2 and loc[0] == "indicators" and isinstance(loc[1], int):
                number, column = rows[loc[1]][0], ".".join(map(str, loc[2:]))
            elif loc:
                column = _SCHEME_FIELD.get(str(loc[0]), str(loc[0]))
            report.errors.append(_error(number, column, e["msg"]))
        return None
    return None if failed else scheme


async def import_schemes(
    conn: Conn,
    *,
    principal: Principal | None,
    sheet: Sheet,
    partial: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Schemes, one row per indicator: each scheme named in the sheet is replaced whole."""
    report = ImportReport()
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in sheet_rows(sheet):
        if "scheme" not in row:
            report.errors.append(_error(number, "scheme", "Field required"))
            continue
        groups.setdefault(row["scheme"], []).append((number, row))
    schemes = [(s, len(rows)) for i, rows in groups.items() if (s := _scheme(i, rows, report))]

    def writer(scheme: Scheme) -> Writer:
        return lambda: write_scheme(conn, scheme)

    return await finish(
        conn,
        principal,
        report,
        partial=partial,
        writers=[(writer(s), n) for s, n in schemes],
        progress=progress,
        action="scheme.import",
        target="evaluation_schemes",
    )

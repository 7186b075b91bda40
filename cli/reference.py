"""`meterhub reference import KIND FILE`: the bureau's reference sheets straight into the
database (the same imports as the API's, audited without a key as made at the command line)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from meterhub.db import connect
from meterhub.errors import DatabaseUnavailableError
from meterhub.settings import get_settings
from registry.errors import SheetError
from registry.imports import ImportReport
from registry.reference.kinds import KINDS
from registry.sheets import XLSX_TYPES, Sheet, read_sheet

app = typer.Typer(
    help="Reference data: holidays, grid emission factors, industry benchmarks, evaluation "
    "schemes, firms' list memberships and projects.",
    no_args_is_help=True,
)
console = Console()


def _read(kind: str, path: Path) -> Sheet:
    spec = KINDS[kind]
    media_type = next(iter(XLSX_TYPES)) if path.suffix.lower() == ".xlsx" else "text/csv"
    return read_sheet(path.read_bytes(), media_type, aliases=spec.columns, fields=spec.fields)


def _show_errors(report: ImportReport) -> None:
    table = Table(title=f"{len({e['row'] for e in report.errors})} bad rows")
    for name in ("row", "column", "reason"):
        table.add_column(name)
    for error in report.errors:
        table.add_row(str(error["row"]), error["column"] or "", error["message"])
    console.print(table)


@app.command("import")
def import_sheet(
    kind: str = typer.Argument(
        ..., metavar="KIND", help=f"what the file holds: {', '.join(KINDS)}"
    ),
    path: Path = typer.Argument(
        ..., metavar="FILE", exists=True, dir_okay=False, help="a .csv or .xlsx sheet"
    ),
    partial: bool = typer.Option(False, help="write the good rows even if some are bad"),
) -> None:
    """Import a sheet of reference data (columns and Chinese headers in docs/import.md),
    with a progress bar. All or nothing unless --partial; every bad row is printed with its
    row number and reason. Rows already there (same key) are updated."""
    if kind not in KINDS:
        raise typer.BadParameter(f"one of {', '.join(KINDS)}", param_hint="KIND")
    settings = get_settings()
    try:
        sheet = _read(kind, path)
    except SheetError as exc:
        console.print(f"[red]error:[/red] {path}: {exc}")
        raise typer.Exit(1) from None

    async def run() -> ImportReport:
        conn = await connect(settings)
        try:
            with Progress(console=console) as progress:
                task = progress.add_task(f"{kind} ({path.name})", total=len(sheet.rows))
                return await KINDS[kind].run(
                    conn,
                    principal=None,
                    sheet=sheet,
                    partial=partial,
                    progress=lambda rows: progress.advance(task, rows),
                )
        finally:
            await conn.close()

    try:
        report = asyncio.run(run())
    except DatabaseUnavailableError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if report.errors:
        _show_errors(report)
    if not report.written:
        console.print("nothing written (all or nothing: fix the rows, or use --partial)")
        raise typer.Exit(1)
    console.print(f"{kind}: created {report.created}, updated {report.updated}")

"""`meterhub notices`: the weekly rectification notices."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from alerts import rulebook
from alerts.calendar import parse_week
from alerts.errors import AlertsError
from alerts.notices import config as notice_config
from alerts.notices.generate import Issued, generate
from alerts.schedule import last_whole_week
from cli.runner import run_command
from meterhub.db import create_pool
from meterhub.errors import DatabaseUnavailableError
from meterhub.reading import LOCAL_TZ
from meterhub.settings import get_settings

app = typer.Typer(help="Weekly rectification notices (每周通报): generate and inspect them.")
console = Console()


def _show(issued: Issued) -> None:
    what = (
        f"revision {issued.revision}" if issued.new else f"unchanged (revision {issued.revision})"
    )
    console.print(f"{issued.number} — week of {issued.week}: {what}")
    if issued.changes:
        table = Table(title="changes against the revision before")
        table.add_column("what")
        table.add_column("change")
        for change in issued.changes:
            subject = change.get("firm") or change.get("section", "")
            detail = change.get("change") or ", ".join(change.get("fields", {}))
            if change.get("fields") and change.get("change") == "changed":
                detail += ": " + ", ".join(change["fields"])
            table.add_row(str(subject), str(detail))
        console.print(table)


@app.command("generate")
def generate_command(
    week: str = typer.Option(None, help="ISO week, e.g. 2026-W48 (default: the last whole week)"),
) -> None:
    """Bring the cases up to date and issue the week's notice: unchanged data issues
    nothing new (the stored revision stands, byte-identical); changed data a new revision
    that lists what changed. Run `meterhub alerts run` for the week first."""
    settings = get_settings()
    try:
        monday = (
            parse_week(week).astimezone(LOCAL_TZ).date()
            if week
            else last_whole_week(datetime.now(LOCAL_TZ))
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--week") from None

    async def main() -> Issued:
        pool = await create_pool(settings, max_size=2)
        try:
            with console.status(f"generating the notice of the week of {monday}"):
                return await generate(
                    pool,
                    week=monday,
                    config=notice_config.load(settings.notice_file),
                    rulebook=rulebook.load(settings.rules_file),
                    settings=settings,
                )
        finally:
            await pool.close()

    issued = run_command(main(), console=console, errors=(AlertsError, DatabaseUnavailableError))
    _show(issued)

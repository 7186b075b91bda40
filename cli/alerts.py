"""`meterhub alerts`: the weekly analytics (anomaly rules and findings)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from alerts import rulebook
from alerts.calendar import parse_week
from alerts.errors import AlertsError
from alerts.weekly import RunSummary, run_week
from meterhub.db import create_pool
from meterhub.errors import DatabaseUnavailableError
from meterhub.reading import LOCAL_TZ
from meterhub.settings import get_settings

app = typer.Typer(help="Energy-use-per-output analytics: the weekly rules and their findings.")
console = Console()


def _last_whole_week() -> str:
    today = date.today()
    monday = today - timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(first: str, count: int) -> list[date]:
    try:
        start = parse_week(first).astimezone(LOCAL_TZ).date()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--week") from None
    return [start + timedelta(weeks=i) for i in range(count)]


def _show(summary: RunSummary) -> None:
    table = Table(title=f"week of {summary.week} — {summary.firms} firms judged")
    table.add_column("rule")
    table.add_column("firms hit", justify="right")
    for code, n in summary.hits.items():
        table.add_row(code, str(n))
    console.print(table)
    split = ", ".join(f"{k} {v:.2f} s" for k, v in summary.seconds.items())
    console.print(f"{summary.total} hits; {split}")


@app.command("run")
def run(
    week: str = typer.Option(
        None, help="ISO week to judge, e.g. 2026-W48 (default: the last whole week)"
    ),
    weeks: int = typer.Option(1, min=1, max=520, help="judge this many weeks from --week on"),
) -> None:
    """Run every enabled rule of the rules file (MHUB_RULES_FILE, default the shipped
    alerts/rules.toml) for one or more weeks, store the hits and update the findings.
    Re-running a week is idempotent."""
    settings = get_settings()
    targets = _weeks(week or _last_whole_week(), weeks)

    async def main() -> list[RunSummary]:
        book = rulebook.load(settings.rules_file)
        pool = await create_pool(settings, max_size=2)
        done = []
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("judging weeks", total=len(targets))
                for monday in targets:
                    done.append(await run_week(pool, week=monday, settings=settings, rulebook=book))
                    progress.advance(task)
        finally:
            await pool.close()
        return done

    try:
        summaries = asyncio.run(main())
    except (AlertsError, DatabaseUnavailableError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for summary in summaries:
        _show(summary)

"""`meterhub alerts`: the weekly analytics (anomaly rules and findings), the year's per-mu
evaluation and carbon grades, and the import of official classes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from alerts import rulebook
from alerts.annual import Period
from alerts.calendar import parse_week
from alerts.errors import AlertsError, InvalidPeriodError
from alerts.official import OFFICIAL_COLUMNS, import_official
from alerts.weekly import RunSummary, run_week
from alerts.yearly import STEPS, YearSummary, run_year
from cli.runner import run_command
from meterhub.db import connect, create_pool
from meterhub.errors import DatabaseUnavailableError
from meterhub.reading import LOCAL_TZ
from meterhub.settings import get_settings
from registry.errors import RegistryError
from registry.imports import ImportReport
from registry.sheets import XLSX_TYPES, read_sheet

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

    summaries = run_command(main(), console=console, errors=(AlertsError, DatabaseUnavailableError))
    for summary in summaries:
        _show(summary)


def _period(year: int | None, ytd_month: str | None) -> Period:
    try:
        if ytd_month is None:
            return Period(year if year is not None else date.today().year - 1)
        period = Period.parse_month(ytd_month)
    except InvalidPeriodError as exc:
        raise typer.BadParameter(str(exc)) from None
    if year is not None and year != period.year:
        raise typer.BadParameter(f"--ytd-month {ytd_month} is not in --year {year}")
    return period


def _show_year(summary: YearSummary) -> None:
    label = summary.period.label
    table = Table(title=f"亩均效益评价 {label} — scheme {summary.scheme}, {summary.firms} firms")
    table.add_column("cohort")
    for cls in ("A", "B", "C", "D"):
        table.add_column(cls, justify="right")
    for cohort, counts in summary.classes.items():
        table.add_row(cohort, *(str(counts.get(c, 0)) for c in ("A", "B", "C", "D")))
    console.print(table)
    reasons = ", ".join(f"{r} {n}" for r, n in summary.not_rated.items()) or "none"
    console.print(f"not rated: {reasons}")
    factor = summary.factor
    grades = ", ".join(f"grade {g}: {n}" for g, n in summary.grades.items()) or "none graded"
    console.print(
        f"碳效码: {grades} (grid factor {factor.tco2_per_mwh} t CO2/MWh, "
        f"{factor.region} {factor.kind} {factor.year})"
    )
    split = ", ".join(f"{k} {v:.2f} s" for k, v in summary.seconds.items())
    console.print(split)


@app.command("evaluate")
def evaluate(
    year: int = typer.Option(None, help="year to evaluate (default: last year)"),
    scheme: str = typer.Option(None, help="evaluation scheme id (default: newest for the year)"),
    ytd_month: str = typer.Option(
        None, "--ytd-month", help="year to date: January to this month, e.g. 2026-10"
    ),
) -> None:
    """The per-mu evaluation (亩均效益综合评价) and carbon-efficiency grades (碳效码) of a
    year or year to date; replaces that year's computed classes and grades (official
    classes stay). Re-running is idempotent."""
    settings = get_settings()
    period = _period(year, ytd_month)

    async def main() -> YearSummary:
        pool = await create_pool(settings, max_size=2)
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("evaluating", total=len(STEPS))

                def step(name: str) -> None:
                    progress.update(task, description=name, completed=STEPS.index(name))

                summary = await run_year(
                    pool, period=period, settings=settings, scheme_id=scheme, step=step
                )
                progress.update(task, completed=len(STEPS))
                return summary
        finally:
            await pool.close()

    summary = run_command(main(), console=console, errors=(AlertsError, DatabaseUnavailableError))
    _show_year(summary)


@app.command("import-classes")
def import_classes(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV or XLSX: 统一社会信用代码, 年度, 评价类别, 综合得分",
    ),
    partial: bool = typer.Option(False, help="write the good rows even if some are bad"),
) -> None:
    """Import officially published per-mu classes (source official, beside the computed
    ones; the "D two years running" rule prefers them). All-or-nothing unless --partial."""
    settings = get_settings()
    media = next(iter(XLSX_TYPES)) if path.suffix.lower() == ".xlsx" else "text/csv"

    body = path.read_bytes()

    async def main() -> ImportReport:
        fields = set(OFFICIAL_COLUMNS.values())
        sheet = read_sheet(body, media, aliases=OFFICIAL_COLUMNS, fields=fields)
        conn = await connect(settings)
        try:
            return await import_official(conn, sheet=sheet, principal=None, partial=partial)
        finally:
            await conn.close()

    report = run_command(main(), console=console, errors=(RegistryError, DatabaseUnavailableError))
    for error in report.errors:
        console.print(f"row {error['row']} {error['column'] or ''}: {error['message']}")
    if not report.written:
        console.print("[red]nothing written[/red] (fix the rows above or pass --partial)")
        raise typer.Exit(1)
    console.print(f"{report.created} classes added, {report.updated} updated")

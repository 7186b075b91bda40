"""`meterhub db …`: schema migrations."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from meterhub.db import connect
from meterhub.errors import MeterhubError
from meterhub.migrate import migrate as apply_migrations
from meterhub.migrate import status as migration_status
from meterhub.settings import get_settings

app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
console = Console()


async def _migrate() -> None:
    settings = get_settings()
    conn = await connect(settings)
    try:
        done = await apply_migrations(conn, settings.migrations_dir)
    finally:
        await conn.close()
    if not done:
        console.print("schema is up to date")
    for migration in done:
        console.print(f"applied {migration.path.name}")


async def _status() -> None:
    settings = get_settings()
    conn = await connect(settings)
    try:
        states = await migration_status(conn, settings.migrations_dir)
    finally:
        await conn.close()
    table = Table("version", "name", "state")
    for state in states:
        table.add_row(
            f"{state.migration.version:04d}",
            state.migration.name,
            "applied" if state.applied else "[yellow]pending[/]",
        )
    console.print(table)


def _run(coro: object) -> None:
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except MeterhubError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def migrate() -> None:
    """Apply pending migrations in order, each in its own transaction."""
    _run(_migrate())


@app.command()
def status() -> None:
    """List migrations and whether each is applied (an edited applied file is an error)."""
    _run(_status())

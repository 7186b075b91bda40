"""`meterhub keys …`: API keys (stored only as hashes; the secret is shown once)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from meterhub.db import connect
from meterhub.errors import MeterhubError
from registry.keys import Role, create_key, revoke_key

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


@app.command()
def create(
    name: str = typer.Option(..., help="who or what holds the key, e.g. '国网义乌 feed'"),
    role: Role = typer.Option(..., help="grid, bureau, town, field or admin"),
    scope: str | None = typer.Option(
        None,
        help="the town of a town key (苏溪 or 苏溪镇; one of GET /v1/towns), the feed id of a "
        "grid key",
    ),
) -> None:
    """Create a key and print it once; only its hash is stored."""

    async def run() -> None:
        conn = await connect()
        try:
            new = await create_key(conn, name=name, role=role, scope=scope)
        finally:
            await conn.close()
        scope_text = f", {new.principal.scope}" if new.principal.scope else ""
        console.print(f"created key {new.principal.key_id} ({role}{scope_text})")
        console.print("store it now, it is not shown again:")
        typer.echo(new.key)

    try:
        asyncio.run(run())
    except MeterhubError as exc:  # UnknownTownError lists the valid towns
        raise _fail(str(exc)) from exc


@app.command("list")
def list_keys() -> None:
    """List keys (id, prefix, role, scope, created, last used, revoked)."""

    async def run() -> None:
        conn = await connect()
        try:
            rows = await conn.fetch(
                "SELECT id, prefix, name, role, scope, created_at, last_used_at, revoked_at "
                "FROM api_keys ORDER BY id"
            )
        finally:
            await conn.close()
        table = Table("id", "prefix", "name", "role", "scope", "created", "last used", "revoked")
        for r in rows:
            table.add_row(*(str(r[k] or "") for k in r.keys()))  # noqa: SIM118
        console.print(table)

    try:
        asyncio.run(run())
    except MeterhubError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def revoke(key: str = typer.Argument(help="the key's id or prefix")) -> None:
    """Revoke a key: it is refused from then on (within a few seconds on running APIs)."""

    async def run() -> bool:
        conn = await connect()
        try:
            return await revoke_key(conn, key)
        finally:
            await conn.close()

    try:
        revoked = asyncio.run(run())
    except MeterhubError as exc:
        raise _fail(str(exc)) from exc
    if not revoked:
        raise _fail(f"no active key {key!r}")
    console.print(f"revoked {key}")

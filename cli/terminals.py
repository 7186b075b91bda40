"""`meterhub terminals check METER`: the commissioning check at the command line."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import typer
from rich.console import Console
from rich.table import Table

from collectors.commissioning import CheckReport
from collectors.networks import DialPolicy
from meterhub.db import connect
from meterhub.errors import MeterhubError
from meterhub.logs import configure_logging
from meterhub.settings import get_settings
from registry.terminals import check_meter

app = typer.Typer(help="Terminals: the commissioning check.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


def _show(report: CheckReport) -> None:
    verdict = "[green]read[/]" if report.ok else "[red]nothing read[/]"
    model = f", model {report.model}" if report.model else ""
    console.print(f"meter {report.meter_id} ({report.protocol}{model}) on {report.link}: {verdict}")
    if report.error:
        console.print(f"  why: {report.error}")
    if report.values:
        table = Table("field", "value (meter side)")
        for name, value in report.values.items():
            table.add_row(name, f"{value:g}")
        console.print(table)
    for title, items in (("refused", report.refused), ("unusable", report.garbage)):
        for what, why in items.items():
            console.print(f"  {title}: {what}: {why}")
    if report.meter_time is not None:
        console.print(f"  meter clock: {report.meter_time} (drift {report.clock_drift_s} s)")
    if (address := report.address) is not None:
        answered = address.answered or f"no answer ({address.error})"
        console.print(f"  registered address {address.registered}, on the wire {address.wire}")
        console.print(f"  the meter answers the read-address command (0x13) as: {answered}")
        console.print(f"  byte order: {address.byte_order}")
        if address.hint:
            console.print(f"  [yellow]{address.hint}[/]")
    console.print(f"  took {report.elapsed_s:.2f} s; nothing read was stored")


@app.command()
def check(
    meter: str = typer.Argument(help="the meter's id or code"),
    timeout: float = typer.Option(2.0, min=0.1, max=10, help="seconds per request"),
    json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Poll a Modbus or DL/T 645 terminal once (only inside MHUB_COLLECT_NETWORKS) and show
    what it read, what it refused and why; for DL/T 645 also the address it answers to the
    read-address command and the byte order of its 12 digits. Exit status 1 if nothing was
    read."""
    settings = get_settings()
    configure_logging(settings)

    async def run() -> CheckReport:
        conn = await connect(settings)
        try:
            meter_id = await conn.fetchval(
                "SELECT id FROM meters WHERE code = $1 ORDER BY removed_at NULLS FIRST LIMIT 1",
                meter,
            )  # a code first: codes may be all digits too
            if meter_id is None and meter.isdecimal() and len(meter) <= 18:
                meter_id = await conn.fetchval("SELECT id FROM meters WHERE id = $1", int(meter))
            if meter_id is None:
                raise _fail(f"no meter with the id or code {meter!r}")
            policy = DialPolicy(settings.collect_network_list)
            return await check_meter(conn, meter_id, principal=None, policy=policy, timeout=timeout)
        finally:
            await conn.close()

    try:
        report = asyncio.run(run())
    except MeterhubError as exc:
        raise _fail(str(exc)) from exc
    if json:
        typer.echo(orjson.dumps(dataclasses.asdict(report)).decode())
    else:
        _show(report)
    if not report.ok:
        raise typer.Exit(1)

"""`meterhub`: the one command-line entry point."""

from __future__ import annotations

import typer

from cli import (
    alerts,
    collect,
    db,
    derive,
    imports,
    keys,
    mqtt,
    notices,
    reference,
    serve,
    services,
    simulate,
    terminals,
)

app = typer.Typer(
    name="meterhub",
    help="Smart-meter data service: collectors, lossless ingest into TimescaleDB, "
    "the bureau's trend API, weekly analytics and rectification notices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(services.app, name="services")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(imports.app, name="import")
app.add_typer(simulate.app, name="simulate")
app.add_typer(alerts.app, name="alerts")
app.add_typer(notices.app, name="notices")
app.add_typer(reference.app, name="reference")
app.add_typer(terminals.app, name="terminals")
app.command("serve")(serve.serve)
app.command("collect")(collect.collect)
app.command("derive")(derive.derive)
app.command("ingest-mqtt")(mqtt.ingest_mqtt)


if __name__ == "__main__":
    app()

"""`meterhub services …`: the project-local PostgreSQL+TimescaleDB and Mosquitto."""

from __future__ import annotations

import os
import subprocess

import typer

from meterhub.settings import PROJECT_ROOT, get_settings

SCRIPT = PROJECT_ROOT / "deploy" / "services.sh"

app = typer.Typer(
    help="Install, start and stop the local PostgreSQL+TimescaleDB and Mosquitto "
    "(data under MHUB_RUN_DIR, default .run/).",
    no_args_is_help=True,
)


def _run(*args: str) -> None:
    settings = get_settings()
    env = {
        **os.environ,
        "MHUB_RUN_DIR": str(settings.run_dir),
        "MHUB_PG_PORT": str(settings.pg_port),
        "MHUB_MQTT_PORT": str(settings.mqtt_port),
    }
    result = subprocess.run(["bash", str(SCRIPT), *args], env=env, check=False)
    raise typer.Exit(result.returncode)


@app.command()
def up() -> None:
    """Install what is missing, start both services (idempotent), wait until they answer."""
    _run("up")


@app.command()
def down(
    service: str = typer.Argument("all", help="postgres, mosquitto or all"),
) -> None:
    """Stop the services cleanly (both, or one); their data stays in MHUB_RUN_DIR."""
    _run("down", *([] if service == "all" else [service]))


@app.command()
def status() -> None:
    """Say what runs; exit code 0 only if both services are up."""
    _run("status")


@app.command()
def env() -> None:
    """Print `export MHUB_DATABASE_URL=…` and `export MHUB_MQTT_URL=…` for `eval`."""
    _run("env")


@app.command("mqtt-user")
def mqtt_user(
    name: str = typer.Argument(help="gateway id, also the MQTT user name"),
    password: str = typer.Argument(help="its password"),
) -> None:
    """Add or update a gateway's broker credentials (it may publish under meterhub/v1/NAME/)."""
    _run("mqtt-user", name, password)

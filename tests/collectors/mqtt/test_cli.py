"""`ingest-mqtt` imports cleanly and documents its options (it is run for real in test_kill)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from cli.mqtt import ingest_mqtt


def test_help_lists_every_option() -> None:
    app = typer.Typer()
    app.command("ingest-mqtt")(ingest_mqtt)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    for option in (
        "--group",
        "--client-id",
        "--gateways",
        "--receive-maximum",
        "--session-expiry",
        "--end-session",
        "--drain-timeout",
        "--metrics-port",
    ):
        assert option in result.output
    assert "SIGTERM" in result.output

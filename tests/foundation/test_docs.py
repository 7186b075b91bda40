"""The README documents every setting and every command."""

from __future__ import annotations

import typer.main

from cli.main import app
from meterhub.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"MHUB_{n.upper()}" for n in Settings.model_fields if f"MHUB_{n.upper()}" not in README
    ]
    assert not missing, f"document these in README.md: {missing}"


def test_every_command_is_in_the_readme_and_has_help() -> None:
    click_app = typer.main.get_command(app)
    commands = getattr(click_app, "commands", {})
    assert commands
    for name, command in commands.items():
        assert f"meterhub {name}" in README, f"README.md does not mention `meterhub {name}`"
        assert command.help, f"`meterhub {name}` has no help text"

"""`meterhub simulate …` on the command line: arguments, files and messages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import simulate
from meterhub.settings import Settings
from simulators.city import generate_city
from simulators.city_file import load_city
from tests.simulators.core_builders import at

cli = CliRunner()


def test_city_writes_the_generated_city(tmp_path: Path) -> None:
    out = tmp_path / "city.toml"
    args = ["city", "--firms", "5", "--seed", "3", "--start", "2026-09-07", "--out", str(out)]
    result = cli.invoke(simulate.app, [*args, "--host", "127.0.0.8"])
    assert result.exit_code == 0, result.output
    expected = generate_city(firms=5, seed=3, start=at(2026, 9, 7), host="127.0.0.8")
    assert load_city(out) == expected
    assert "grid-feed" in result.output and str(out) in result.output


@pytest.mark.integration
def test_register_prints_a_summary_and_writes_the_grid_key(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulate, "get_settings", lambda: settings)
    city, key = tmp_path / "city.toml", tmp_path / "grid.key"
    made = cli.invoke(
        simulate.app,
        ["city", "--firms", "4", "--seed", "41", "--out", str(city), "--host", "127.0.0.8"],
    )
    assert made.exit_code == 0, made.output
    args = ["register", str(city), "--no-mqtt-users", "--grid-key-out", str(key)]
    result = cli.invoke(simulate.app, args)
    assert result.exit_code == 0, result.output
    assert "firms" in result.output and "meters (" in result.output
    assert key.read_text().startswith("mh_")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "{city}"], "nothing to backfill"),
        (["run", "{city}", "--protocol", "bacnet"], "unknown protocol"),
        (["register", "{city}", "--as-of", "yesterday"], "not an ISO 8601 time"),
        (["run", "{missing}"], "cannot read city file"),
    ],
)
def test_mistakes_are_clear_errors(tmp_path: Path, args: list[str], message: str) -> None:
    city = tmp_path / "city.toml"
    made = cli.invoke(simulate.app, ["city", "--firms", "2", "--seed", "1", "--out", str(city)])
    assert made.exit_code == 0, made.output
    paths = {"city": str(city), "missing": str(tmp_path / "nope.toml")}
    result = cli.invoke(simulate.app, [a.format(**paths) for a in args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())

"""`meterhub simulate city` with overlapping gateway ports: a clear error, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_same_port_for_two_protocols_is_a_clear_error(tmp_path: Path) -> None:
    meterhub = Path(sys.executable).with_name("meterhub")
    out = tmp_path / "city.toml"
    city = ["simulate", "city", "--firms", "40", "--seed", "1", "--out", str(out)]
    ports = ["--modbus-port", "15020", "--dlt645-port", "15020"]
    done = subprocess.run(
        [str(meterhub), *city, *ports],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1
    assert "Traceback" not in said
    assert "used twice" in said and "--dlt645-port" in said and "do not overlap" in said
    assert not out.exists()

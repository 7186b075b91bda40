"""Log output of `configure_logging`: plain tracebacks without locals, no secrets, bounded
lines, cheap to write — in both formats."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import structlog

from meterhub.logs import configure_logging, get_logger
from meterhub.redact import MAX_TRACEBACK_CHARS, MAX_VALUE_CHARS
from meterhub.settings import Settings

FORMATS = ("console", "json")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def _crash(key: str) -> None:
    headers = {"x-api-key": key}  # a local: only a traceback with locals would show it
    marker = f"LOCAL-{secrets.token_hex(6)}"
    raise RuntimeError(f"failed for {len(headers)} headers and {len(marker)} chars")


def _deep(n: int) -> None:
    if n:
        _deep(n - 1)
    raise ValueError("bottom")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", FORMATS)
def test_tracebacks_have_no_locals_and_no_key(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format=fmt))
    key = f"mh_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    started = time.perf_counter()
    try:
        _crash(key)
    except RuntimeError as exc:
        get_logger("test").error("request failed", key_seen=key, exc_info=exc)
    try:
        _crash(key)
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 2
    assert "RuntimeError: failed for 1 headers" in err
    assert key not in err
    assert "LOCAL-" not in err and "headers = " not in err
    assert elapsed < 0.5, f"two tracebacks took {elapsed:.2f} s"
    if fmt == "json":
        lines = [json.loads(line) for line in err.splitlines()]
        assert [line["event"] for line in lines] == [
            "request failed",
            "Exception in ASGI application",
        ]
        assert all("RuntimeError" in line["exception"] for line in lines)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", FORMATS)
def test_lines_are_bounded_and_cheap(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format=fmt))
    log = get_logger("test")
    started = time.perf_counter()
    log.warning("huge value", body="x" * 5_000_000)
    try:
        _deep(600)
    except ValueError as exc:
        log.error("deep", exc_info=exc)
    elapsed = time.perf_counter() - started
    huge, _, deep = capsys.readouterr().err.partition("deep")
    assert len(huge) < MAX_VALUE_CHARS + 500
    assert len(deep) < MAX_TRACEBACK_CHARS + 1_000
    assert "ValueError: bottom" in deep  # the tail of a cut traceback stays
    assert elapsed < 1.0, f"logging took {elapsed:.2f} s"


def test_loggers_are_safe_before_configure_logging() -> None:
    """Without `configure_logging` (tests, scripts) structlog's defaults would print rich
    tracebacks with locals; meterhub.logs replaces their renderer on import."""
    key = f"mh_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    script = (
        "import sys\n"
        "from meterhub.logs import get_logger\n"
        "def crash(key):\n"
        "    headers = {'x-api-key': key}\n"
        "    raise RuntimeError('failed for ' + str(len(headers)) + ' headers')\n"
        "try:\n"
        "    crash(sys.argv[1])\n"
        "except RuntimeError as exc:\n"
        "    get_logger('test').error('request failed', exc_info=exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, key], capture_output=True, text=True, timeout=60, check=True
    )
    written = done.stdout + done.stderr
    assert "RuntimeError: failed for 1 headers" in written
    assert key not in written and "headers = " not in written

"""`meterhub serve` as a process with its log in a file: an unexpected error answers a
problem+json 500, is logged once, without locals and without any key or password, and does
not stall the API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import structlog

from meterhub.settings import Settings
from tests.api.conftest import TOWN, Keys
from tests.foundation.test_api_process import _free_port, _wait_until_up
from tests.support import credit_code

pytestmark = pytest.mark.integration

ISSUE_13_BAD_TS = [{"meter": "NOPE", "ts": "0001-01-01T00:00:00+14:00", "energy": 1}]


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> str:
        """End the process; its whole log."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return self.log.read_text(errors="replace")


@pytest.fixture(params=["console", "json"])
def served(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Served]:
    port = _free_port()
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(tmp_path / "spool"),
        "MHUB_LOG_FORMAT": request.param,
        "MHUB_INTERVAL_WORKER": "false",
    }
    log = tmp_path / "api.log"
    meterhub = Path(sys.executable).with_name("meterhub")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(meterhub), "serve"], env=env, stdout=out, stderr=out)
    served = Served(f"http://127.0.0.1:{port}", log, proc)
    try:
        _wait_until_up(served.url, proc)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
async def crashing_firm(db: asyncpg.Connection) -> AsyncIterator[str]:
    """A firm name whose INSERT the database refuses with an error no route expects (a
    faulty trigger: a real failure mode, and the API code runs unchanged)."""
    name = f"crash-{uuid.uuid4().hex[:10]}"
    trigger = f"t_{uuid.uuid4().hex[:10]}"
    await db.execute(
        f"""
        CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'faulty trigger refused %', NEW.name USING ERRCODE = 'P0001';
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON firms FOR EACH ROW
            WHEN (NEW.name = '{name}') EXECUTE FUNCTION {trigger}();
        """
    )
    yield name
    await db.execute(f"DROP TRIGGER {trigger} ON firms; DROP FUNCTION {trigger}();")


def _secrets_in_play(keys: Keys, settings: Settings) -> list[str]:
    values = [getattr(keys, role) for role in Keys.__dataclass_fields__]
    for url in (settings.dsn(), settings.mqtt()):
        if password := urlsplit(url).password:
            values.append(password)
    return values


async def test_a_500_is_problem_json_logged_once_without_secrets_or_stall(
    served: Served, crashing_firm: str, keys: Keys, settings: Settings
) -> None:
    wrong_secret = keys.bureau[:-6] + secrets.token_urlsafe(4)[:6]  # valid prefix, bad secret
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        for role in Keys.__dataclass_fields__:  # every key reaches the API at least once
            await http.get("/readyz", headers=keys.headers(role))
            await http.get("/v1/firms?limit=1", headers=keys.headers(role))
        assert (await http.get("/v1/firms", headers={"X-API-Key": wrong_secret})).status_code == 401

        firm = {"credit_code": credit_code(uuid.uuid4().int % 10_000_000), "name": crashing_firm}
        started = time.perf_counter()
        crash = await http.post(
            "/v1/firms",
            json={**firm, "industry": "C1711", "town": TOWN},
            headers=keys.headers("bureau"),
        )
        answered = time.perf_counter() - started
        live_started = time.perf_counter()
        live = await http.get("/livez")
        live_after = time.perf_counter() - live_started

        bad_ts = await http.post("/v1/readings", json=ISSUE_13_BAD_TS, headers=keys.headers("grid"))

    assert crash.status_code == 500
    assert crash.headers["content-type"] == "application/problem+json"
    problem = crash.json()
    assert problem["type"] == "/problems/internal" and problem["instance"] == "/v1/firms"
    assert crashing_firm not in crash.text  # the cause stays in the log, the caller gets an id
    assert live.status_code == 200
    assert answered < 1.0 and live_after < 1.0, (answered, live_after)
    if bad_ts.status_code >= 400:  # a 4xx once that input is refused, a 500 until then
        assert bad_ts.headers["content-type"] == "application/problem+json", bad_ts.text

    log = served.stop()
    for secret in [*_secrets_in_play(keys, settings), wrong_secret]:
        assert secret not in log
    assert "x-api-key" not in log.lower()  # no request headers: tracebacks carry no locals
    assert log.count(problem["error_id"]) == 1  # logged once
    entry = next(line for line in log.splitlines() if problem["error_id"] in line)
    if entry.startswith("{"):  # the json format
        fields = json.loads(entry)
        assert fields["error"] == "RaiseError" and fields["path"] == "/v1/firms"
        assert "faulty trigger refused" in fields["exception"]
    else:
        assert "error=RaiseError" in entry
        assert "faulty trigger refused" in log


async def test_any_exception_in_a_route_is_a_problem_500_logged_once(
    client: httpx.AsyncClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("api.routes.readings.split_body", broken)
    # a fresh logger: one cached under an earlier configure_logging would bypass the capture
    monkeypatch.setattr("api.problems._log", structlog.stdlib.get_logger("api.problems"))
    with structlog.testing.capture_logs() as logs:
        response = await client.post("/v1/readings", json=[], headers=keys.headers("grid"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/internal"
    errors = [entry for entry in logs if entry["event"] == "unexpected error"]
    assert len(errors) == 1
    assert errors[0]["error"] == "ZeroDivisionError"
    assert errors[0]["error_id"] == response.json()["error_id"]

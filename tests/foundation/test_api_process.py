"""The API as a user starts it: `meterhub serve` in its own process, over real TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from meterhub.settings import Settings
from registry.keys import Role, create_key

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"meterhub serve exited with {proc.returncode}")
        try:
            httpx.get(f"{url}/livez", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("meterhub serve did not answer within 20 s")


@pytest.fixture(scope="module")
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    spool = tmp_path_factory.mktemp("api-spool")
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(spool),
    }
    meterhub = Path(sys.executable).with_name("meterhub")
    proc = subprocess.Popen([str(meterhub), "serve"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_livez(api_url: str) -> None:
    response = httpx.get(f"{api_url}/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_broker(api_url: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        anonymous = (await http.get("/readyz")).json()
    assert anonymous == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "broker": {"ok": True},
            "collectors": {"ok": True},
            "intervals": {"ok": True},
            "spool": {"ok": True},
            "workers": {"ok": True},
        },
    }
    conn = await asyncpg.connect(settings.dsn())
    try:
        key = (await create_key(conn, name="readyz test", role=Role.FIELD, scope=None)).key
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=api_url) as http:
        body = (await http.get("/readyz", headers={"X-API-Key": key})).json()
    assert body["status"] == "ok", body
    assert body["checks"]["database"]["detail"].startswith("timescaledb ")
    assert body["checks"]["broker"]["detail"] == "connected"


def test_docs_are_served_without_a_cdn(api_url: str) -> None:
    page = httpx.get(f"{api_url}/docs")
    assert page.status_code == 200
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    bundle = httpx.get(f"{api_url}/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 500_000
    spec = httpx.get(f"{api_url}/openapi.json").json()
    assert "/readyz" in spec["paths"]


def test_metrics_are_prometheus_text(api_url: str) -> None:
    response = httpx.get(f"{api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text


def test_readyz_reports_an_unreachable_database(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    dead_db = f"postgresql://nobody:x@127.0.0.1:{_free_port()}/none"
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": dead_db,
        "MHUB_API_PORT": str(port),
        "MHUB_SPOOL_DIR": str(tmp_path / "spool"),
    }
    meterhub = Path(sys.executable).with_name("meterhub")
    proc = subprocess.Popen([str(meterhub), "serve"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        response = httpx.get(f"{url}/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"]["ok"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)

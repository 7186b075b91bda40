"""The project-local services: idempotent start, and a broker that enforces its ACL."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from meterhub.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.integration

SERVICES = PROJECT_ROOT / "deploy" / "services.sh"


def services(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _pids(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.split()


def test_up_twice_leaves_one_instance_of_each(base_settings: Settings) -> None:
    secrets = base_settings.run_dir / "secrets"
    passwords = [
        (secrets / name).read_text().strip() for name in ("pg_password", "mqtt_ingest_password")
    ]
    for _ in range(2):
        result = services("up")
        assert result.returncode == 0, result.stderr
        for password in passwords:  # `make demo` prints this output
            assert password not in result.stdout + result.stderr
        assert str(secrets / "pg_password") in result.stdout
    data_dir = base_settings.run_dir / "pg" / "data"
    postmasters = [p for p in _pids(f"postgres -D {data_dir}")]
    brokers = _pids(f"mosquitto -c {base_settings.run_dir / 'mosquitto'}")
    assert len(postmasters) == 1, postmasters
    assert len(brokers) == 1, brokers
    status = services("status")
    assert status.returncode == 0
    assert "postgresql running" in status.stderr + status.stdout
    assert "mosquitto  running" in status.stderr + status.stdout
    assert str(secrets / "mqtt_ingest_password") in status.stdout
    assert not any(password in status.stdout + status.stderr for password in passwords)


def test_env_prints_exports_for_eval() -> None:
    result = services("env")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "export MHUB_DATABASE_URL",
        "export MHUB_MQTT_URL",
    ]


def test_port_held_by_another_program_names_port_and_variable(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = services(
            "up", env={"MHUB_RUN_DIR": str(tmp_path / "run"), "MHUB_PG_PORT": str(port)}
        )
    assert result.returncode != 0
    assert f"port {port} is already in use" in result.stderr
    assert "MHUB_PG_PORT" in result.stderr


def _connect(
    settings: Settings, username: str | None, password: str | None
) -> tuple[mqtt.Client, ReasonCode | None]:
    url = urlsplit(settings.mqtt())
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    if username is not None:
        client.username_pw_set(username, password)
    outcome: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        outcome.append(rc)
        done.set()

    client.on_connect = on_connect
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    done.wait(10)
    return client, outcome[0] if outcome else None


def test_broker_refuses_anonymous_clients(base_settings: Settings) -> None:
    client, rc = _connect(base_settings, None, None)
    client.loop_stop()
    client.disconnect()
    assert rc is not None and rc.is_failure


def test_gateway_cannot_publish_outside_its_prefix(base_settings: Settings) -> None:
    gateway, other = f"gw-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
    assert services("mqtt-user", gateway, "s3cret-pass").returncode == 0
    url = urlsplit(base_settings.mqtt())
    ingest, rc = _connect(base_settings, url.username, url.password)
    assert rc is not None and not rc.is_failure
    received: list[str] = []
    got_own = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg.topic)
        if msg.topic.startswith(f"meterhub/v1/{gateway}/"):
            got_own.set()

    ingest.on_message = on_message
    ingest.subscribe("meterhub/v1/#", qos=1)
    intruder, rc = _connect(base_settings, gateway, "s3cret-pass")
    assert rc is not None and not rc.is_failure
    # The broker may answer "not authorized" and drop the connection: either is a refusal.
    with contextlib.suppress(RuntimeError, ValueError):
        intruder.publish(f"meterhub/v1/{other}/readings", b"{}", qos=1).wait_for_publish(10)
    pub, rc = _connect(base_settings, gateway, "s3cret-pass")
    assert rc is not None and not rc.is_failure
    pub.publish(f"meterhub/v1/{gateway}/readings", b"{}", qos=1).wait_for_publish(10)
    assert got_own.wait(10)
    for client in (intruder, pub, ingest):
        client.loop_stop()
        client.disconnect()
    # The foreign publish was handled first; had it been delivered, it would be here.
    assert received == [f"meterhub/v1/{gateway}/readings"]

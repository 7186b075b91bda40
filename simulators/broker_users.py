"""Broker log-ins for a city's simulated MQTT gateways, via ``deploy/services.sh mqtt-user``.

Each gateway logs in as its gateway id with `gateway_password` (derived from the city's
seed), and the broker's ACL lets it publish only under ``meterhub/v1/<gateway id>/``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from meterhub.settings import PROJECT_ROOT, Settings
from simulators.config import CityConfig
from simulators.errors import SimulatorError
from simulators.mqtt_publisher import gateway_password

SCRIPT = PROJECT_ROOT / "deploy" / "services.sh"


class BrokerUserError(SimulatorError):
    """``deploy/services.sh mqtt-user`` failed for a gateway."""

    code = "broker_user"


def mqtt_gateways(city: CityConfig) -> list[str]:
    """Ids of the city's MQTT gateways that have meters, in file order."""
    used = {m.gateway for _, m in city.meters() if m.protocol == "mqtt"}
    return [g.id for g in city.gateways if g.protocol == "mqtt" and g.id in used]


def create_broker_users(
    city: CityConfig,
    settings: Settings,
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float = 120.0,
) -> list[str]:
    """Add or update the broker user of each MQTT gateway of ``city`` on the local broker
    (the one ``meterhub services`` runs); returns the gateway ids. Idempotent.

    Example::

        create_broker_users(load_city("city.toml"), get_settings())  # ['mqtt-0001', ...]
    """
    env = {
        **os.environ,
        "MHUB_RUN_DIR": str(settings.run_dir),
        "MHUB_PG_PORT": str(settings.pg_port),
        "MHUB_MQTT_PORT": str(settings.mqtt_port),
    }
    done: list[str] = []
    for gateway_id in mqtt_gateways(city):
        password = gateway_password(city.seed, gateway_id)
        try:
            result = subprocess.run(
                ["bash", str(SCRIPT), "mqtt-user", gateway_id, password],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerUserError(f"cannot run {SCRIPT.name} for {gateway_id}: {exc}") from exc
        if result.returncode != 0:
            why = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BrokerUserError(f"broker user {gateway_id!r} not created: {why[0]}")
        done.append(gateway_id)
        if progress is not None:
            progress(gateway_id)
    return done

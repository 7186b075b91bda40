"""The production deployment in deploy/: compose file, image, broker, Prometheus, Grafana.

No Docker engine runs here, so these check the files themselves: what the compose file
starts and in which order, that it only sets settings meterhub has and only runs commands
meterhub has, that the broker refuses anonymous clients, and that every dashboard query
runs against the real schema (each with EXPLAIN, one with data).
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import typer.main
import yaml
from prometheus_client import REGISTRY
from typer.core import TyperGroup

import collectors.mqtt.metrics
import ingest.metrics
from cli.main import app
from meterhub.reading import LOCAL_TZ
from meterhub.settings import PROJECT_ROOT, Settings
from tests.support import create_meters, ensure_town

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (DEPLOY / "Dockerfile").read_text("utf-8")
ENV_EXAMPLE = (DEPLOY / "meterhub.env.example").read_text("utf-8")
OPERATIONS = (PROJECT_ROOT / "docs" / "operations.md").read_text("utf-8")
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
_METRIC_MODULES = (ingest.metrics, collectors.mqtt.metrics)  # their metrics are registered

#: Services that run the meterhub image (built from deploy/Dockerfile).
MHUB_SERVICES = {
    name: s
    for name, s in SERVICES.items()
    if isinstance(s.get("build"), dict) and s["build"].get("dockerfile") == "deploy/Dockerfile"
}
#: The long-running meterhub processes (everything but the one-shot migration).
PROCESSES = {name: s for name, s in MHUB_SERVICES.items() if s["command"][:2] != ["db", "migrate"]}

# Times of a dashboard check: far from any other test's data.
START = datetime(2033, 3, 1, tzinfo=LOCAL_TZ)
END = datetime(2033, 4, 1, tzinfo=LOCAL_TZ)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _env_example_variables() -> tuple[dict[str, str], set[str]]:
    """The variables the env example sets, and every MHUB_ name it mentions (also in
    comments)."""
    values = {}
    for line in ENV_EXAMPLE.splitlines():
        if match := re.fullmatch(r"(MHUB_[A-Z0-9_]+)=(.*)", line.strip()):
            values[match[1]] = match[2]
    return values, set(re.findall(r"\bMHUB_[A-Z0-9_]+\b", ENV_EXAMPLE))


def _deploy_files() -> Iterator[Path]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


# --- the compose file --------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build_and_the_processes_are_separate() -> None:
    for name, service in SERVICES.items():
        assert service.get("image") or service.get("build"), f"{name}: no image and no build"
    commands = {s["command"][0] for s in MHUB_SERVICES.values()}
    assert {"serve", "collect", "ingest-mqtt", "derive", "db"} <= commands


def test_third_party_images_are_pinned() -> None:
    images = {name: s["image"] for name, s in SERVICES.items() if name not in MHUB_SERVICES}
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg1[56]", images["timescaledb"])
    assert re.fullmatch(r"eclipse-mosquitto:2\.\d+\.\d+", images["mosquitto"])
    for name, image in images.items():
        tag = image.rpartition(":")[2]
        assert ":" in image and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned"
        assert "latest" not in tag, f"{name}: {image}"
    assert {s["image"] for s in MHUB_SERVICES.values()} == {"meterhub:0.1.0"}


def test_healthchecks_on_the_database_and_the_api() -> None:
    database = " ".join(SERVICES["timescaledb"]["healthcheck"]["test"])
    assert "pg_isready" in database and "-h 127.0.0.1" in database
    api = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/livez" in api
    assert _environment(SERVICES["api"])["MHUB_API_PORT"] == "8000"


def test_start_order_migrations_after_a_healthy_database_processes_after_migrations() -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in conditions, f"{name} -> {dependency}: {spec}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"
    migrate = next(s for s in MHUB_SERVICES.values() if s["command"] == ["db", "migrate"])
    assert migrate["depends_on"] == {"timescaledb": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    for name, service in PROCESSES.items():
        assert service["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, name
    assert "mosquitto" in SERVICES["ingest-mqtt"]["depends_on"]


def test_ports_are_published_on_loopback_only() -> None:
    ports = [(n, p) for n, s in SERVICES.items() for p in s.get("ports", [])]
    assert ("api", "127.0.0.1:8000:8000") in ports
    for name, port in ports:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_each_process_has_its_own_spool_volume() -> None:
    volumes = []
    for name, service in PROCESSES.items():
        spool = _environment(service)["MHUB_SPOOL_DIR"]
        mounted = [v.split(":") for v in service["volumes"] if v.split(":")[1] == spool]
        assert len(mounted) == 1, f"{name}: MHUB_SPOOL_DIR {spool} is not a volume"
        assert mounted[0][0] in COMPOSE["volumes"], f"{name}: undeclared volume {mounted[0][0]}"
        volumes.append(mounted[0][0])
    assert len(volumes) == len(set(volumes)) == len(PROCESSES)


def test_derivation_runs_once_in_its_own_service() -> None:
    assert _environment(SERVICES["api"])["MHUB_INTERVAL_WORKER"] == "false"
    derivers = [n for n, s in PROCESSES.items() if s["command"][0] == "derive"]
    assert derivers == ["derive"]


def test_every_declared_secret_and_volume_is_used_and_secrets_stay_out_of_git() -> None:
    used_secrets = {x for s in SERVICES.values() for x in s.get("secrets", [])}
    assert used_secrets == set(COMPOSE["secrets"])
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    ignored = (DEPLOY / "secrets" / ".gitignore").read_text("utf-8").split()
    assert ignored[0] == "*" or "*" in ignored
    used_volumes = {
        v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", []) if v[0] != "."
    }
    assert used_volumes == set(COMPOSE["volumes"])
    for path in (".run", ".venv", "deploy/secrets", "deploy/meterhub.env"):
        assert path in (PROJECT_ROOT / ".dockerignore").read_text("utf-8").split()


def test_every_mhub_variable_is_a_setting() -> None:
    names: set[str] = set()
    for service in SERVICES.values():
        names |= {k for k in _environment(service) if k.startswith("MHUB_")}
    compose_names = set(names)
    values, mentioned = _env_example_variables()
    names |= mentioned | set(re.findall(r"\bMHUB_[A-Z0-9_]+\b", DOCKERFILE))
    fields = {f"MHUB_{f.upper()}" for f in Settings.model_fields}
    assert names - fields == set(), "not meterhub settings"
    assert compose_names <= mentioned, "the env example does not mention these"
    assert {"MHUB_DATABASE_URL", "MHUB_MQTT_URL"} <= set(values)
    for service in MHUB_SERVICES.values():
        assert service["env_file"] == ["meterhub.env"]


def test_the_env_example_is_valid_and_holds_no_password() -> None:
    values, _ = _env_example_variables()
    settings = Settings.model_validate(
        {k.removeprefix("MHUB_").lower(): v for k, v in values.items()}
    )
    database = urlsplit(settings.dsn())
    broker = urlsplit(settings.mqtt())
    assert (database.hostname, database.port) == ("timescaledb", 5432)
    assert (broker.hostname, broker.port) == ("mosquitto", 1883)
    assert {"timescaledb", "mosquitto"} <= set(SERVICES)
    assert database.password == broker.password == "CHANGE-ME"


def _unknown_arguments(args: list[str]) -> list[str]:
    """What of ``args`` the meterhub CLI does not know (a command or an option); when it
    knows everything, the arguments are parsed as the CLI would (a bad value raises)."""
    command = typer.main.get_command(app)
    rest = list(args)
    while isinstance(command, TyperGroup):
        name = rest.pop(0)
        if name not in command.commands:
            return [name]
        command = command.commands[name]
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    unknown = [a.split("=")[0] for a in rest if a.startswith("-")]
    unknown = [a for a in unknown if a not in known]
    if not unknown:
        command.make_context(" ".join(args), rest)
    return unknown


def test_every_command_of_the_meterhub_image_is_a_real_cli_command() -> None:
    assert 'ENTRYPOINT ["meterhub"]' in DOCKERFILE
    for name, service in MHUB_SERVICES.items():
        assert isinstance(service["command"], list), f"{name}: use the exec form"
        assert _unknown_arguments(service["command"]) == [], name
    assert _unknown_arguments(["ingest-mqtt", "--no-such-option"]) == ["--no-such-option"]
    assert _unknown_arguments(["db", "migrat"]) == ["migrat"]


def test_no_address_beyond_loopback_in_deploy() -> None:
    private = re.compile(
        r"\b(?:10\.\d{1,3}|172\.(?:1[6-9]|2\d|3[01])|192\.168)\.\d{1,3}\.\d{1,3}\b"
    )
    literal = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
    checked = 0
    for path in [*_deploy_files(), PROJECT_ROOT / "docs" / "operations.md"]:
        text = path.read_text("utf-8", errors="replace")
        assert not private.search(text), f"{path}: a private network address"
        for found in literal.findall(text):
            address = ipaddress.ip_address(found)
            assert address.is_loopback or address.is_unspecified, f"{path}: {found}"
        checked += 1
    assert checked > 10


# --- the image ---------------------------------------------------------------------------


def test_the_image_installs_the_lock_and_runs_as_a_non_root_user() -> None:
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^COPY requirements\.lock ", DOCKERFILE, re.MULTILINE)
    assert "pip install -c requirements.lock ." in DOCKERFILE
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert not re.search(r"^(ENV|ARG)\b.*(PASSWORD|SECRET|_KEY)", DOCKERFILE, re.MULTILINE)
    copied = re.findall(r"^COPY (\S+) \./", DOCKERFILE, re.MULTILINE)
    assert "migrations" in copied and "tests" not in copied and ".run" not in copied


# --- the broker --------------------------------------------------------------------------


def _conf(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0] != "log_type"}


def test_the_broker_refuses_anonymous_clients_and_is_as_durable_as_the_local_one() -> None:
    conf = _conf((DEPLOY / "mosquitto" / "mosquitto.conf").read_text("utf-8"))
    assert conf["allow_anonymous"] == "false"
    assert conf["listener"] == "1883"
    assert "./mosquitto:/mosquitto/config" in SERVICES["mosquitto"]["volumes"]
    assert conf["password_file"] == "/mosquitto/config/passwd"
    assert conf["acl_file"] == "/mosquitto/config/acl"
    assert (DEPLOY / "mosquitto" / "acl").is_file()
    assert "passwd" in (DEPLOY / "mosquitto" / ".gitignore").read_text("utf-8").split()
    assert "mosquitto_passwd" in (DEPLOY / "mosquitto" / "README.md").read_text("utf-8")
    local = _conf((DEPLOY / "mosquitto.conf.template").read_text("utf-8"))
    for key in (
        "persistence",
        "autosave_interval",
        "persistent_client_expiration",
        "max_queued_messages",
        "max_queued_bytes",
        "max_inflight_messages",
        "queue_qos0_messages",
        "per_listener_settings",
        "allow_anonymous",
    ):
        assert conf[key] == local[key], key
    assert urlsplit(_env_example_variables()[0]["MHUB_MQTT_URL"]).port == int(conf["listener"])


def test_the_acl_grants_what_the_local_broker_grants() -> None:
    script = (DEPLOY / "services.sh").read_text("utf-8")
    local = script.split("cat <<'ACL'\n", 1)[1].split("\nACL\n", 1)[0]

    def rules(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip() and line[0] != "#"]

    assert rules((DEPLOY / "mosquitto" / "acl").read_text("utf-8")) == rules(local)
    assert "pattern write meterhub/v1/%u/#" in rules(local)


# --- Prometheus and Grafana --------------------------------------------------------------


def _registered_names() -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def _targets(datasource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text("utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == datasource_type:
                    yield f"{path.name}: {panel['title']}", target


def test_prometheus_scrapes_the_processes_that_serve_metrics() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    jobs = config["scrape_configs"]
    targets = {t for job in jobs for static in job["static_configs"] for t in static["targets"]}
    assert targets == {"api:8000", "ingest-mqtt:9101"}
    mqtt_command = SERVICES["ingest-mqtt"]["command"]
    assert mqtt_command[mqtt_command.index("--metrics-port") + 1] == "9101"
    mounted = SERVICES["prometheus"]["volumes"][0].split(":")[0]
    assert mounted == "./prometheus/prometheus.yml"


def test_grafana_data_sources_point_at_the_compose_services() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "meterhub.yml").read_text("utf-8")
    )["datasources"]
    by_type = {d["type"]: d for d in provisioned}
    postgres = by_type["grafana-postgresql-datasource"]
    assert postgres["url"] == "timescaledb:5432"
    assert postgres["user"] == "grafana_reader" and "grafana_reader" in OPERATIONS
    assert postgres["jsonData"]["database"] == "meterhub"
    secret = re.fullmatch(r"\$__file\{/run/secrets/(\w+)\}", postgres["secureJsonData"]["password"])
    assert secret and secret[1] in SERVICES["grafana"]["secrets"]
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    uids = {d["uid"] for d in provisioned}
    used = {t["datasource"]["uid"] for kind in by_type for _, t in _targets(kind)}
    assert used == uids


def test_dashboards_chart_only_metrics_meterhub_has() -> None:
    registered = _registered_names()
    exprs = [t["expr"] for _, t in _targets("prometheus")]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\bmeterhub_[a-z0-9_]+", expr))
        assert names and names <= registered, f"{expr}: {names - registered}"


def grafana_sql(sql: str, *, start: datetime, end: datetime) -> str:
    """``sql`` with the Grafana PostgreSQL macros expanded as Grafana does."""
    since, until = (t.astimezone(LOCAL_TZ).isoformat() for t in (start, end))
    sql = re.sub(
        r"\$__timeFilter\(([^()]+)\)", lambda m: f"{m[1]} BETWEEN '{since}' AND '{until}'", sql
    )
    sql = sql.replace("$__timeFrom()", f"'{since}'").replace("$__timeTo()", f"'{until}'")
    assert "$" not in sql, f"an unexpanded macro or variable: {sql}"
    return sql


@pytest.mark.integration
async def test_every_dashboard_query_runs_against_the_schema(db: asyncpg.Connection) -> None:
    queries = list(_targets("grafana-postgresql-datasource"))
    assert len(queries) >= 8
    tables = set()
    for where, target in queries:
        sql = grafana_sql(target["rawSql"], start=START, end=END)
        try:
            [plan] = json.loads(await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}"))
        except asyncpg.PostgresError as exc:
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        tables |= set(re.findall(r'"Relation Name": "(\w+)"', json.dumps(plan)))
    assert {"firm_rollups", "firms", "findings", "terminal_status", "quarantine"} <= tables


def _query(title: str) -> str:
    queries = _targets("grafana-postgresql-datasource")
    return str(next(t["rawSql"] for where, t in queries if title in where))


@pytest.mark.integration
async def test_the_daily_town_panel_sums_the_firms_rollups(db: asyncpg.Connection) -> None:
    towns = [f"测{uuid.uuid4().hex[:6]}" for _ in range(2)]
    days = [START + timedelta(days=d) for d in range(3)]
    expected: dict[tuple[datetime, str], float] = {}
    for n, town in enumerate(towns):
        await ensure_town(db, town)
        for firm_number in range(2):
            [meter] = await create_meters(db, 1, town=town)
            firm = await db.fetchval("SELECT firm_id FROM meters WHERE id = $1", meter)
            for d, day in enumerate(days):
                energy = 100.0 * (n + 1) + 10 * firm_number + d
                await db.execute(
                    "INSERT INTO firm_rollups (granularity, firm_id, utility, bucket, energy, "
                    "meters) VALUES ('day', $1, 'electricity', $2, $3, 1), "
                    "('day', $1, 'water', $2, 999, 1)",
                    firm,
                    day,
                    energy,
                )
                expected[(day, town)] = expected.get((day, town), 0.0) + energy
    sql = grafana_sql(_query("Electricity per day by town"), start=days[0], end=days[-1])
    rows = await db.fetch(sql)
    got = {(r["time"], r["metric"]): r["kwh"] for r in rows if r["metric"] in towns}
    assert got == pytest.approx(expected)
    assert len(got) == len(towns) * len(days)


# --- the operations guide ----------------------------------------------------------------


def test_the_operations_guide_covers_the_tasks_and_is_linked() -> None:
    for needle in (
        "timescaledb_pre_restore()",
        "timescaledb_post_restore()",
        "pg_dump",
        "pg_restore",
        "meterhub db migrate",
        "meterhub keys create",
        "meterhub keys revoke",
        "mosquitto_passwd",
        "MHUB_COLLECT_NETWORKS",
        "drop_chunks",
        "add_retention_policy",
        "/readyz",
        "/livez",
    ):
        assert needle in OPERATIONS, needle
    assert "docs/operations.md" in (PROJECT_ROOT / "README.md").read_text("utf-8")


@pytest.mark.integration
async def test_the_retention_example_is_valid_sql(db: asyncpg.Connection) -> None:
    statements = re.findall(r"^(SELECT drop_chunks\(.*\));$", OPERATIONS, re.MULTILINE)
    assert {s.split("'")[1] for s in statements} == {"readings", "intervals"}
    for statement in statements:
        await db.fetch(f"EXPLAIN {statement}")  # plans the call, drops nothing

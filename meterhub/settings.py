"""One typed settings object, read from `MHUB_*` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository (or installation) root: migrations, deploy scripts and `.run/` live here.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (``"127.0.0.0/8, ::1"``); ValueError names a bad one."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part))
            except ValueError as exc:
                raise ValueError(f"MHUB_COLLECT_NETWORKS: {part!r} is not a CIDR ({exc})") from exc
    return tuple(networks)


def _networks_text(text: str) -> str:
    parse_networks(text)  # a bad CIDR fails at start-up, naming the setting
    return text


class Settings(BaseSettings):
    """Every knob meterhub has. Unset URLs point at the project-local services
    (`meterhub services up`), whose generated passwords are read from `MHUB_RUN_DIR/secrets`."""

    model_config = SettingsConfigDict(env_prefix="MHUB_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL/TimescaleDB DSN; default: the local instance"
    )
    mqtt_url: SecretStr | None = Field(
        default=None, description="MQTT broker URL mqtt://user:pass@host:port; default: local"
    )
    run_dir: Path = Field(default=PROJECT_ROOT / ".run", description="local services' data")
    pg_port: int = Field(default=55432, description="port of the local PostgreSQL")
    mqtt_port: int = Field(default=18830, description="port of the local Mosquitto")
    api_host: str = Field(default="127.0.0.1", description="address the API listens on")
    api_port: int = Field(default=8000, description="port the API listens on")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_format: str = Field(default="console", description="console or json")
    migrations_dir: Path = Field(default=PROJECT_ROOT / "migrations")
    spool_dir: Path | None = Field(
        default=None, description="ingest spool for DB outages; default RUN_DIR/spool"
    )
    spool_max_bytes: int = Field(default=2 * 1024**3, description="spool size limit")
    batch_size: int = Field(default=20_000, description="readings per COPY batch")
    batch_max_age: float = Field(default=0.25, description="seconds before a partial flush")
    queue_max: int = Field(default=200_000, description="readings queued before submit waits")
    writers: int = Field(default=2, description="parallel writer connections")
    mqtt_poison_attempts: int = Field(
        default=3,
        ge=1,
        description="failed submits (not for want of a database or spool) of one MQTT "
        "message before it is quarantined as submit_failed and acknowledged",
    )
    interval_worker: bool = Field(
        default=True,
        description="derive intervals and rollups inside `meterhub serve`; turn off when a "
        "separate `meterhub derive` process does it",
    )
    derive_marks_per_pass: int = Field(
        default=200_000,
        ge=1,
        description="dirty ranges one interval derivation pass claims at most (much of a "
        "pass's cost is per meter, not per reading: large passes keep up with ingest)",
    )
    interval_stall_after: float = Field(
        default=300.0,
        gt=0,
        description="seconds the oldest dirty range may wait before /readyz reports the "
        "interval derivation stalled",
    )
    dtu_port: int | None = Field(
        default=None, description="port where 4G DTUs dial in (meterhub collect); off if unset"
    )
    collect_networks: Annotated[str, AfterValidator(_networks_text)] = Field(
        default="127.0.0.0/8,::1",
        description="comma-separated CIDRs collectors may connect to (Modbus hosts, DL/T 645 "
        "tcp:// buses); registering a meter outside them is refused and a collector refuses "
        "to dial one; default: this machine only",
    )
    push_rate_per_key: float = Field(
        default=20_000,
        ge=0,
        description="readings a second one grid key may push to /v1/readings on average "
        "(a token bucket per key, per API process); 0 turns the quota off",
    )
    push_burst: int = Field(
        default=200_000,
        ge=1,
        description="readings one grid key may push at once (the bucket's size); a larger "
        "batch waits for a full bucket",
    )
    future_tolerance: float = Field(
        default=300.0, description="seconds a meter clock may run ahead before quarantine"
    )
    # Conversion to standard coal (GB/T 2589), kgce per unit of each utility.
    kgce_per_kwh: float = Field(
        default=0.1229, description="electricity, calorific equivalent (当量值), kgce/kWh"
    )
    kgce_per_kwh_equal_value: float = Field(
        default=0.3, description="electricity, equal-value (等价值) coal rate of the year, kgce/kWh"
    )
    kgce_per_m3_gas: float = Field(default=1.2143, description="natural gas, kgce/m3")
    kgce_per_t_water: float = Field(default=0.2571, description="fresh water, kgce/t (= m3)")
    # Carbon-efficiency code (碳效码, DB33/T 1347-2023) and per-mu evaluation.
    grid_factor_region: str = Field(
        default="zhejiang", description="region of the grid CO2 factor (grid_emission_factors)"
    )
    grid_factor_kind: Literal["average", "excl_traded_nonfossil", "fossil"] = Field(
        default="average", description="kind of the grid CO2 factor"
    )
    kg_co2_per_m3_gas: float = Field(
        default=2.162, gt=0, description="natural gas, kg CO2 per m3 (unconfirmed default)"
    )
    carbon_sector_depth: int = Field(
        default=3, ge=1, le=5, description="characters of the GB/T 4754 code forming a sector"
    )
    carbon_sector_mean: Literal["ratio_of_sums", "mean_of_ratios"] = Field(
        default="ratio_of_sums", description="how a sector's mean carbon intensity is formed"
    )
    evaluation_not_rated_industries: str = Field(
        default="D",
        description="GB/T 4754 code prefixes (comma-separated) not rated per mu (utilities)",
    )
    # Production state from load: this week's energy over the median of earlier weeks.
    production_baseline_weeks: int = Field(
        default=4,
        ge=1,
        le=26,
        description="weeks before the judged one whose median is the baseline",
    )
    production_running_ratio: float = Field(
        default=0.7, gt=0, description="at or above this share of the baseline: running"
    )
    production_stopped_ratio: float = Field(
        default=0.1, ge=0, description="below this share of the baseline: stopped"
    )
    alerts_schedule: bool = Field(
        default=True,
        description="`meterhub serve` judges each week every Monday 08:00 Asia/Shanghai "
        "(and a missed week at start)",
    )
    notice_file: Path | None = Field(
        default=None,
        description="the weekly notice's wording, problem types and deadlines; default: "
        "alerts/notices/notice.toml",
    )
    rules_file: Path | None = Field(
        default=None, description="the anomaly rules file; default: alerts/rules.toml"
    )

    def _secret(self, name: str) -> str:
        path = self.run_dir / "secrets" / name
        return path.read_text().strip() if path.exists() else ""

    def dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = quote(self._secret("pg_password"), safe="")
        return f"postgresql://meterhub:{password}@127.0.0.1:{self.pg_port}/meterhub"

    def mqtt(self) -> str:
        if self.mqtt_url is not None:
            return self.mqtt_url.get_secret_value()
        password = quote(self._secret("mqtt_ingest_password"), safe="")
        return f"mqtt://ingest:{password}@127.0.0.1:{self.mqtt_port}"

    @property
    def collect_network_list(self) -> tuple[IPNetwork, ...]:
        """`collect_networks` parsed."""
        return parse_networks(self.collect_networks)

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.run_dir / "spool"

    def for_process(self, name: str) -> Settings:
        """These settings for one kind of process: unless MHUB_SPOOL_DIR is set, its spool
        is ``RUN_DIR/spool-<name>`` (a spool belongs to one process at a time)."""
        if self.spool_dir is not None:
            return self
        return self.model_copy(update={"spool_dir": self.run_dir / f"spool-{name}"})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

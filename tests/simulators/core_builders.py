"""Small hand-built cities and meters shared by the simulator-core tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from meterhub.reading import LOCAL_TZ, Utility
from meterhub.uscc import check_character
from simulators.config import (
    CityConfig,
    Dlt645Address,
    FirmSpec,
    GatewaySpec,
    MeterSpec,
    MqttAddress,
)
from simulators.faults import Fault
from simulators.meter import SimulatedMeter
from simulators.tariff import load_tou

INSTALLED = datetime(2025, 11, 3, 9, 0, tzinfo=LOCAL_TZ)
TOU = load_tou()


def credit_code(body: str = "91330782MA2ABCDE1") -> str:
    return body + check_character(body)


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A local (Asia/Shanghai) time: ``at(2026, 3, 4, 10)``."""
    return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL_TZ)


def hours(start: datetime, count: float, step_seconds: float) -> list[datetime]:
    steps = int(count * 3600 / step_seconds)
    return [start + timedelta(seconds=i * step_seconds) for i in range(steps + 1)]


def meter_spec(**overrides: Any) -> MeterSpec:
    """A direct-connected (CT = PT = 1) 100 kW DL/T 645 meter unless overridden."""
    fields: dict[str, Any] = {
        "id": 1,
        "code": "T-E-000001",
        "utility": Utility.ELECTRICITY,
        "protocol": "dlt645",
        "address": Dlt645Address("dlt-001", "000000000001"),
        "model": "DTZY341",
        "installed_at": INSTALLED,
        "rated_power": 100.0,
        "load_factor": 0.6,
        "standby": 0.07,
        "initial_energy": 100.0,
    }
    fields.update(overrides)
    return MeterSpec(**fields)


def firm_spec(*meters: MeterSpec, **overrides: Any) -> FirmSpec:
    """A jewellery firm (one shift, Sunday off) with ``meters``."""
    fields: dict[str, Any] = {
        "credit_code": credit_code(),
        "name": "义乌市测试饰品有限公司",
        "industry": "C2438",
        "town": "苏溪",
        "land_mu": 12.5,
        "meters": meters,
    }
    fields.update(overrides)
    return FirmSpec(**fields)


def simulated(*, seed: int = 7, faults: tuple[Fault, ...] = (), **overrides: Any) -> SimulatedMeter:
    """One simulated meter of `meter_spec(**overrides)` in the jewellery firm."""
    spec = meter_spec(faults=faults, **overrides)
    return SimulatedMeter.build(spec, firm=firm_spec(spec), seed=seed, tou=TOU)


def small_city(seed: int = 7) -> CityConfig:
    """Two firms, a DL/T 645 gateway and an MQTT gateway; an HV meter and a water meter."""
    hv = meter_spec(ct=10.0, pt=100.0, rated_power=567.0, model="DSSD331")
    water = meter_spec(
        id=2,
        code="T-W-000002",
        utility=Utility.WATER,
        protocol="mqtt",
        address=MqttAddress("mqtt-0001", 1),
        model="LXSG-50E",
        rated_power=8.0,
    )
    dyeing = replace(
        firm_spec(
            meter_spec(id=3, code="T-E-000003", address=Dlt645Address("dlt-001", "000000000003"))
        ),
        credit_code=credit_code("91330782MA2ABCDE2"),
        name="义乌市测试印染有限公司",
        industry="C1713",
    )
    return CityConfig(
        seed=seed,
        name="test city",
        gateways=(
            GatewaySpec("dlt-001", "dlt645", port=16020),
            GatewaySpec("mqtt-0001", "mqtt"),
        ),
        firms=(firm_spec(hv, water), dyeing),
    )

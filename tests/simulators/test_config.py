"""City configuration: validation rules and the registry view of addresses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from meterhub.reading import Utility
from simulators.config import (
    CityConfig,
    Dlt645Address,
    GatewaySpec,
    GridFeedAddress,
    ModbusAddress,
    MqttAddress,
)
from simulators.errors import CityConfigError
from simulators.faults import GatewayOffline, LateAnswer, NoAnswer, Replacement, derive_key
from tests.simulators.core_builders import (
    INSTALLED,
    at,
    credit_code,
    firm_spec,
    meter_spec,
    small_city,
)

GATEWAYS = (
    GatewaySpec("dlt-001", "dlt645", port=16020),
    GatewaySpec("mb-001", "modbus", host="127.0.0.1", port=15020),
    GatewaySpec("mqtt-0001", "mqtt"),
)


def city_of(*meters: Any, gateways: tuple[GatewaySpec, ...] = GATEWAYS, **firm: Any) -> CityConfig:
    return CityConfig(seed=1, gateways=gateways, firms=(firm_spec(*meters, **firm),))


def test_a_valid_city() -> None:
    city = small_city()
    assert [m.code for _, m in city.meters()] == ["T-E-000001", "T-W-000002", "T-E-000003"]
    assert [m.code for _, m in city.meters_on("mqtt-0001")] == ["T-W-000002"]
    assert city.gateway("dlt-001").port == 16020
    assert city.tou_table().name.startswith("zhejiang")


def test_registry_addresses() -> None:
    meters = [
        meter_spec(id=1, code="A", protocol="modbus", address=ModbusAddress("mb-001", 3)),
        meter_spec(id=2, code="B"),
        meter_spec(id=3, code="C", protocol="mqtt", address=MqttAddress("mqtt-0001", 2)),
        meter_spec(id=4, code="D", protocol="grid-feed", address=GridFeedAddress("sgcc")),
    ]
    city = city_of(*meters)
    assert [city.registry_address(m) for m in meters] == [
        {"host": "127.0.0.1", "port": 15020, "unit_id": 3},
        {"address": "000000000001", "bus": "dlt-001"},
        {"gateway_id": "mqtt-0001", "channel": 2},
        {"feed": "sgcc"},
    ]


def test_secondary_max_power() -> None:
    meter = meter_spec(ct=10.0, pt=100.0, rated_power=567.0)
    assert (meter.multiplier, meter.max_power) == (1000.0, 0.567)


def test_gateway_faults_have_their_own_key() -> None:
    outage = GatewayOffline(start=at(2026, 1, 6, 9), end=at(2026, 1, 6, 11))
    gateways = (replace(GATEWAYS[0], faults=(outage,)), *GATEWAYS[1:])
    city = city_of(meter_spec(), gateways=gateways)
    faults = city.gateway_faults("dlt-001")
    assert faults.key == derive_key(1, "gateway:dlt-001")
    assert faults.active(GatewayOffline, at(2026, 1, 6, 10)) == outage
    assert city.gateway_faults("mb-001").active(GatewayOffline, at(2026, 1, 6, 10)) is None
    with pytest.raises(CityConfigError, match="no gateway"):
        city.gateway("nope")


def test_replacement_codes() -> None:
    meter = meter_spec(
        faults=(Replacement(at=at(2026, 2, 1), new_code="X"), Replacement(at=at(2026, 1, 1)))
    )
    assert meter.replacement_codes() == ["T-E-000001-R1", "X"]


@pytest.mark.parametrize(
    ("meters", "firm", "message"),
    [
        ((meter_spec(), meter_spec(code="B")), {}, "meter ids used twice"),
        ((meter_spec(), meter_spec(id=2)), {}, "meter codes used twice"),
        (
            (
                meter_spec(),
                meter_spec(
                    id=2, code="B", faults=(Replacement(at=at(2026, 1, 1), new_code="T-E-000001"),)
                ),
            ),
            {},
            "meter codes used twice",
        ),
        (
            (
                meter_spec(),
                meter_spec(id=2, code="B", address=Dlt645Address("dlt-001", "000000000001")),
            ),
            {},
            "used twice",
        ),
        (
            (
                meter_spec(protocol="modbus", address=ModbusAddress("mb-001", 1)),
                meter_spec(id=2, code="B", protocol="modbus", address=ModbusAddress("mb-001", 1)),
            ),
            {},
            "addresses used twice",
        ),
        ((meter_spec(),), {"credit_code": "91330782MA2ABCDE10"}, "invalid credit code"),
        ((meter_spec(),), {"industry": "knitting"}, "GB/T 4754"),
        ((meter_spec(),), {"town": ""}, "needs a name"),
        ((meter_spec(),), {"land_mu": -1.0}, "land_mu"),
        ((meter_spec(id=0),), {}, "positive integer id"),
        ((meter_spec(protocol="modbus"),), {}, "does not take"),
        ((meter_spec(address=Dlt645Address("dlt-404", "000000000001")),), {}, "no dlt645 gateway"),
        ((meter_spec(address=Dlt645Address("mb-001", "000000000001")),), {}, "no dlt645 gateway"),
        ((meter_spec(protocol="modbus", address=ModbusAddress("mb-001", 248)),), {}, "unit id"),
        ((meter_spec(address=Dlt645Address("dlt-001", "12345")),), {}, "12 digits"),
        ((meter_spec(protocol="mqtt", address=MqttAddress("mqtt-0001", 0)),), {}, "channel"),
        ((meter_spec(utility=Utility.WATER),), {}, "water and gas"),
        (
            (
                meter_spec(
                    utility=Utility.GAS,
                    protocol="mqtt",
                    address=MqttAddress("mqtt-0001", 1),
                    ct=2.0,
                ),
            ),
            {},
            "water and gas",
        ),
        ((meter_spec(installed_at=INSTALLED.replace(tzinfo=None)),), {}, "UTC offset"),
        ((meter_spec(rated_power=0.0),), {}, "positive"),
        ((meter_spec(standby=0.6, load_factor=0.6),), {}, "standby < load_factor"),
        ((meter_spec(load_factor=1.2),), {}, "load_factor <= 1"),
        ((meter_spec(initial_energy=1e6),), {}, "initial_energy < rollover"),
        ((meter_spec(resolution=0.0),), {}, "resolution"),
        ((meter_spec(faults=(GatewayOffline(),)),), {}, "belongs to a gateway"),
        ((meter_spec(faults=(Replacement(at=at(2025, 1, 1)),)),), {}, "before installation"),
    ],
)
def test_invalid_meters_and_firms(
    meters: tuple[Any, ...], firm: dict[str, Any], message: str
) -> None:
    with pytest.raises(CityConfigError, match=message):
        city_of(*meters, **firm)


@pytest.mark.parametrize(
    ("gateways", "message"),
    [
        ((GATEWAYS[0], GATEWAYS[0]), "gateway ids used twice"),
        ((GATEWAYS[0], GatewaySpec("dlt-002", "dlt645", port=16020)), r"\(host, port\) used twice"),
        ((GatewaySpec("dlt-001", "dlt645"),), "need a port"),
        ((GatewaySpec("dlt-001", "dlt645", port=70000),), "out of range"),
        ((GatewaySpec("mqtt-1", "mqtt", port=1883),), "need a port"),
        ((GatewaySpec("dlt-001", "dlt645", port=1, faults=(NoAnswer(),)),), "only gateway_offline"),
    ],
)
def test_invalid_gateways(gateways: tuple[GatewaySpec, ...], message: str) -> None:
    with pytest.raises(CityConfigError, match=message):
        CityConfig(seed=1, gateways=gateways)


def test_duplicate_credit_codes_and_bad_seed() -> None:
    firm = firm_spec()
    with pytest.raises(CityConfigError, match="credit codes used twice"):
        CityConfig(seed=1, firms=(firm, replace(firm, name="other")))
    with pytest.raises(CityConfigError, match="seed"):
        CityConfig(seed=True)
    assert credit_code() != credit_code("91330782MA2ABCDE2")


def test_meter_faults_may_be_any_meter_kind() -> None:
    city = city_of(meter_spec(faults=(LateAnswer(delay=2.0, probability=0.5), NoAnswer())))
    assert len(next(city.meters())[1].faults) == 2

"""The city generator: reproducible, valid credit codes, unique addresses, plausible meters."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from collectors.modbus import list_models
from meterhub.reading import Utility
from meterhub.uscc import is_valid
from simulators.city import DEFAULT_START, TOWNS, generate_city
from simulators.config import Dlt645Address, GridFeedAddress, ModbusAddress, MqttAddress
from simulators.faults import GatewayOffline, Replacement, Rollover, Stoppage
from simulators.industry import INDUSTRIES

CITY = generate_city(firms=300, seed=11)


def test_same_seed_same_city_other_seed_other_city() -> None:
    assert generate_city(firms=300, seed=11) == CITY
    other = generate_city(firms=300, seed=12)
    assert [f.credit_code for f in other.firms] != [f.credit_code for f in CITY.firms]


def test_firms_are_valid_and_unique() -> None:
    codes = [f.credit_code for f in CITY.firms]
    assert len(CITY.firms) == 300 and len(set(codes)) == 300
    assert all(is_valid(c) and c.startswith("91330782MA") for c in codes)
    assert len({f.name for f in CITY.firms}) == 300
    assert all(f.name.startswith("义乌市") and f.name.endswith("有限公司") for f in CITY.firms)
    assert {f.town for f in CITY.firms} <= set(TOWNS) and len(TOWNS) == 14
    assert {f.industry for f in CITY.firms} <= set(INDUSTRIES)
    assert len({f.industry for f in CITY.firms}) >= 12
    assert all(f.land_mu is not None and 1.0 <= f.land_mu <= 300.0 for f in CITY.firms)


def test_organisation_code_check_digit() -> None:
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    for firm in CITY.firms:
        org = firm.credit_code[8:17]
        check = 11 - sum(int(c, 36) * w for c, w in zip(org[:8], weights, strict=True)) % 11
        assert org[8] == {10: "X", 11: "0"}.get(check, str(check))


def test_addresses_are_unique_and_gateways_bounded() -> None:
    meters = [m for _, m in CITY.meters()]
    assert len({m.id for m in meters}) == len(meters)
    assert len({m.code for m in meters}) == len(meters)
    bus = [m.address for m in meters if not isinstance(m.address, GridFeedAddress)]
    assert len(set(bus)) == len(bus)
    dlt = [m.address.address for m in meters if isinstance(m.address, Dlt645Address)]
    assert len(set(dlt)) == len(dlt) and all(len(a) == 12 and a.isdigit() for a in dlt)
    per_gateway = Counter(m.gateway for m in meters if m.gateway is not None)
    for gateway in CITY.gateways:
        if gateway.protocol == "mqtt":
            assert gateway.port is None
        else:
            assert gateway.port is not None and per_gateway[gateway.id] <= 16
    ports = [g.port for g in CITY.gateways if g.port is not None]
    assert len(set(ports)) == len(ports)


def test_protocol_mix_and_addresses_match() -> None:
    meters = [m for _, m in CITY.meters()]
    protocols = Counter(m.protocol for m in meters if m.utility is Utility.ELECTRICITY)
    assert set(protocols) == {"dlt645", "modbus", "mqtt", "grid-feed"}
    assert protocols["dlt645"] > protocols["modbus"] > protocols["grid-feed"]
    for m in meters:
        expected = {"dlt645": Dlt645Address, "modbus": ModbusAddress, "mqtt": MqttAddress}
        assert isinstance(m.address, expected.get(m.protocol, GridFeedAddress))
        if m.protocol == "modbus":
            assert m.model in list_models()
        if m.utility is not Utility.ELECTRICITY:
            assert m.protocol == "mqtt" and m.multiplier == 1.0


def test_meters_are_sized_like_transformers() -> None:
    for _, m in CITY.meters():
        assert (
            DEFAULT_START - timedelta(days=120)
            <= m.installed_at
            <= DEFAULT_START - timedelta(days=60)
        )
        assert 0.35 <= m.load_factor <= 0.7 and 0.05 <= m.standby <= 0.1
        assert 0 <= m.initial_energy < 1_000_000
        if m.utility is Utility.ELECTRICITY:
            assert m.rated_power <= 2250.0
            if m.pt > 1:  # 10 kV metering: secondary rating of a x/5 A, 100 V meter
                assert m.pt == 100.0 and m.rated_power >= 567.0 and m.max_power < 2.0
            elif m.ct > 1:
                assert m.max_power < 5.0
            else:
                assert m.rated_power < 90.0


def test_water_and_gas_follow_the_industry() -> None:
    dyeing = [f for f in CITY.firms if f.industry == "C1713"]
    assert dyeing and all(any(m.utility is Utility.WATER for m in f.meters) for f in dyeing)
    utilities = Counter(m.utility for _, m in CITY.meters())
    assert utilities[Utility.WATER] > 0 and utilities[Utility.GAS] > 0


def test_faults_are_sprinkled() -> None:
    city = generate_city(firms=200, seed=3, fault_rate=0.3)
    kinds = Counter(f.kind for _, m in city.meters() for f in m.faults)
    assert set(kinds) >= {
        "late_answer",
        "no_answer",
        "garbage_values",
        "clock_drift",
        "rollover",
        "replacement",
    }
    assert kinds["stoppage"] > 0
    assert any(isinstance(f, GatewayOffline) for g in city.gateways for f in g.faults)
    for _, m in city.meters():
        for fault in m.faults:
            if isinstance(fault, Rollover | Replacement):
                assert DEFAULT_START < fault.at < DEFAULT_START + timedelta(days=51)
            if isinstance(fault, Stoppage):
                assert fault.start is not None and fault.start.hour == 0
    quiet = generate_city(firms=100, seed=3, fault_rate=0.0)
    assert not any(m.faults for _, m in quiet.meters()) and not any(
        g.faults for g in quiet.gateways
    )


def test_options() -> None:
    city = generate_city(firms=60, seed=2, bus_size=4, host="127.0.0.2", dlt645_port=20000)
    dlt = [g for g in city.gateways if g.protocol == "dlt645"]
    assert dlt[0].port == 20000 and dlt[0].id == "dlt-001" and dlt[0].host == "127.0.0.2"
    assert all(len(city.meters_on(g.id)) <= 4 for g in dlt)
    assert generate_city(firms=0, seed=1).firms == ()
    with pytest.raises(ValueError, match="bus_size"):
        generate_city(firms=1, seed=1, bus_size=0)

"""The city file: TOML round trips, a hand-written file, and readable errors."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meterhub.reading import Utility
from simulators.city import generate_city
from simulators.city_file import dump_city, load_city, parse_city, write_city
from simulators.config import Dlt645Address, MqttAddress
from simulators.errors import CityConfigError
from simulators.faults import GatewayOffline, LateAnswer, Replacement, Rollover
from simulators.industry import Shift, Weekend
from tests.simulators.core_builders import at, credit_code, small_city

HAND_WRITTEN = f"""
seed = 42
name = "hand written"
start = 2026-01-05T00:00:00+08:00
tou = "flat.toml"

[[gateways]]
id = "dlt-001"
protocol = "dlt645"
port = 16020

[[gateways.faults]]
kind = "gateway_offline"
start = 2026-01-06T09:00:00+08:00
end = 2026-01-06T11:00:00+08:00

[[gateways]]
id = "mqtt-0001"
protocol = "mqtt"

[[firms]]
credit_code = "{credit_code()}"
name = "义乌市华鑫饰品有限公司"
industry = "C2438"
town = "苏溪镇"
land_mu = 12.5
above_scale = true
tags = ["d-class", "high-energy"]
shift = "two"
weekend = "seven_days"

[[firms.meters]]
id = 1
code = "YW-E-000001"
utility = "electricity"
protocol = "dlt645"
model = "DSSD331"
address = {{ gateway = "dlt-001", address = "202401000001" }}
installed_at = 2025-10-01T10:00:00+08:00
rated_power = 630
ct = 10
pt = 100

[[firms.meters.faults]]
kind = "late_answer"
probability = 0.1
delay = 3

[[firms.meters.faults]]
kind = "rollover"
at = 2026-01-10T00:00:00+08:00

[[firms.meters]]
id = 2
code = "YW-W-000002"
utility = "water"
protocol = "mqtt"
model = "LXSG-50E"
address = {{ gateway = "mqtt-0001", channel = 1 }}
installed_at = 2025-10-01T10:00:00+08:00
rated_power = 4.5
"""
FLAT = """[[schedules]]
months = [1,2,3,4,5,6,7,8,9,10,11,12]
periods = [{ start = "00:00", end = "24:00", tariff = "flat" }]
"""


def test_hand_written_file(tmp_path: Path) -> None:
    (tmp_path / "city.toml").write_text(HAND_WRITTEN, encoding="utf-8")
    (tmp_path / "flat.toml").write_text(FLAT)
    city = load_city(tmp_path / "city.toml")
    assert (city.seed, city.name, city.start) == (42, "hand written", at(2026, 1, 5))
    assert city.tou == str(tmp_path / "flat.toml")
    assert city.tou_table().tariff_at(at(2026, 3, 4, 10)) == "flat"
    assert city.gateways[0].faults == (
        GatewayOffline(start=at(2026, 1, 6, 9), end=at(2026, 1, 6, 11)),
    )
    firm = city.firms[0]
    assert (firm.shift, firm.weekend, firm.tags, firm.above_scale) == (
        Shift.TWO,
        Weekend.SEVEN_DAYS,
        ("d-class", "high-energy"),
        True,
    )
    electric, water = firm.meters
    assert electric.address == Dlt645Address("dlt-001", "202401000001")
    assert (electric.rated_power, electric.ct, electric.pt, electric.load_factor) == (
        630.0,
        10.0,
        100.0,
        0.5,
    )
    assert electric.faults == (LateAnswer(probability=0.1, delay=3.0), Rollover(at=at(2026, 1, 10)))
    assert (water.utility, water.address, water.rollover) == (
        Utility.WATER,
        MqttAddress("mqtt-0001", 1),
        1e6,
    )


def test_generated_city_round_trips(tmp_path: Path) -> None:
    city = generate_city(firms=40, seed=5, fault_rate=0.5)
    assert any(m.faults for _, m in city.meters())
    path = tmp_path / "city.toml"
    write_city(city, path)
    assert load_city(path) == city
    assert dump_city(load_city(path)) == path.read_text(encoding="utf-8")


def test_dump_of_the_small_city() -> None:
    text = dump_city(small_city())
    assert text.startswith("# A simulated city for meterhub")
    assert '\n[[firms.meters]]\nid = 2\ncode = "T-W-000002"\nutility = "water"\n' in text
    assert 'address = { gateway = "mqtt-0001", channel = 1 }' in text
    assert parse_city(tomllib.loads(text)) == small_city()


def test_replacement_faults_round_trip() -> None:
    city = small_city()
    firm = city.firms[0]
    swapped = replace(firm.meters[0], faults=(Replacement(at=at(2026, 2, 1)),))
    changed = replace(city, firms=(replace(firm, meters=(swapped,)),))
    assert parse_city(tomllib.loads(dump_city(changed))) == changed


def _city(**changes: Any) -> dict[str, Any]:
    data = tomllib.loads(HAND_WRITTEN)
    del data["tou"]
    for path, value in changes.items():
        *parents, key = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[key]
        else:
            target[key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, "unknown keys"),
        ({"seed": "42"}, "`seed` must be int"),
        ({"seed": None}, "`seed` is missing"),
        ({"firms": {}}, "must be an array"),
        ({"firms.0.meters.0.rated_power": "big"}, "`rated_power` must be float"),
        ({"firms.0.meters.0.rated_power": True}, "`rated_power` must be float"),
        ({"firms.0.meters.0.utility": "steam"}, "'steam' is not one of"),
        ({"firms.0.meters.0.protocol": "zigbee"}, "protocol 'zigbee'"),
        ({"firms.0.meters.0.address": "dlt-001"}, "must be a table"),
        ({"firms.0.meters.0.address": {"gateway": "dlt-001"}}, "`address` is missing"),
        (
            {"firms.0.meters.0.address": {"gateway": "dlt-001", "address": "1", "x": 1}},
            "unknown keys",
        ),
        ({"firms.0.meters.0.installed_at": "2025-10-01"}, "must be datetime"),
        (
            {"firms.0.meters.0.faults": [{"kind": "meteor"}]},
            "firm 1, meter 1, fault 1: unknown fault",
        ),
        ({"firms.0.shift": "four"}, "'four' is not one of"),
        ({"firms.0.tags": ["a", 1]}, "tags must be strings"),
        ({"firms.0.meters.1.channel": 3}, "unknown keys"),
        ({"gateways.0.protocol": "bacnet"}, "not in modbus"),
        ({"gateways.0.faults": [{"kind": "no_answer"}]}, "only gateway_offline"),
        ({"firms.0.credit_code": "nope"}, "invalid credit code"),
        ({"firms.0.meters": {"id": 1}}, "must be an array"),
        ({"firms.0.meters.0.faults": ["no_answer"]}, "malformed"),
    ],
)
def test_bad_files_name_the_problem(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CityConfigError, match=message):
        parse_city(_city(**changes), source="city.toml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CityConfigError, match="cannot read city file"):
        load_city(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = ")
    with pytest.raises(CityConfigError, match="cannot read city file"):
        load_city(broken)

"""Simulated meters: registers are the integral of power, split by tariff, and behave like
real registers (monotonic, rollover, replacement); snapshots are physically consistent."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.reading import TARIFFS, VALUE_FIELDS, Utility
from simulators.config import MqttAddress
from simulators.errors import NaiveTimeError, NotInstalledError
from simulators.faults import ClockDrift, GarbageValues, Replacement, Rollover
from simulators.meter import SimulatedMeter, build_meters
from simulators.profile import KNOT_SECONDS
from tests.simulators.core_builders import INSTALLED, at, hours, simulated, small_city


def integral_kwh(meter: SimulatedMeter, t1: datetime, t2: datetime, step: float = 1.0) -> float:
    """Trapezoid integral of primary power over [t1, t2] on a ``step``-second grid."""
    times = hours(t1, (t2 - t1).total_seconds() / 3600, step)
    assert times[-1] == t2
    powers = [meter.power_kw(t) for t in times]
    return sum((a + b) / 2 for a, b in pairwise(powers)) * step / 3600


def test_energy_delta_is_the_integral_of_power() -> None:
    meter = simulated()
    t1, t2 = at(2026, 3, 4, 8, 47, 13), at(2026, 3, 4, 11, 47, 13)
    expected = integral_kwh(meter, t1, t2)
    assert expected > 100  # a working morning of a 100 kW meter at 60 %
    delta = meter.energy_at(t2)["total"] - meter.energy_at(t1)["total"]
    assert abs(delta - expected) <= 0.011  # register truncation to 0.01 kWh at both ends
    exact = sum(meter.registers.exact(t2)) - sum(meter.registers.exact(t1))
    assert exact == pytest.approx(expected, rel=1e-7)


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(
    start=st.integers(min_value=0, max_value=56 * 86400 * 1000),
    length=st.integers(min_value=1, max_value=3 * 86400 * 1000),
)
def test_energy_is_exactly_the_piecewise_linear_integral(start: int, length: int) -> None:
    """Between any two times the registers grow by the trapezoids of power between the
    knots (power is linear between knots), and never shrink."""
    meter = simulated()
    t1 = INSTALLED + timedelta(milliseconds=start)
    t2 = t1 + timedelta(milliseconds=length)
    knot = timedelta(seconds=KNOT_SECONDS)
    first = t1 - timedelta(seconds=t1.timestamp() % KNOT_SECONDS) + knot
    points = [t1, *(first + i * knot for i in range(int((t2 - first) / knot) + 1)), t2]
    points = sorted(p for p in set(points) if t1 <= p <= t2)
    powers = [meter.power_kw(p) for p in points]
    expected = sum(
        (a + b) / 2 * (q - p).total_seconds() / 3600
        for (p, q), (a, b) in zip(pairwise(points), pairwise(powers), strict=True)
    )
    exact = sum(meter.registers.exact(t2)) - sum(meter.registers.exact(t1))
    # abs: a float timestamp resolves about 0.25 us: 7e-9 kWh at 100 kW
    assert exact == pytest.approx(expected, rel=1e-9, abs=1e-8)
    before, after = meter.energy_at(t1), meter.energy_at(t2)
    assert all(after[k] >= before[k] for k in before)


def test_secondary_registers_divide_by_ct_times_pt() -> None:
    meter = simulated(ct=10.0, pt=100.0, rated_power=567.0)
    t1, t2 = at(2026, 3, 4, 6), at(2026, 3, 4, 18)
    expected = integral_kwh(meter, t1, t2, step=5.0) / 1000
    delta = meter.energy_at(t2)["total"] - meter.energy_at(t1)["total"]
    assert abs(delta - expected) <= 0.011
    assert meter.snapshot(t1).power == pytest.approx(meter.power_kw(t1) / 1000, abs=5e-5)


def test_only_the_tariff_in_force_grows() -> None:
    meter = simulated()
    t1, t2 = at(2026, 3, 4, 9), at(2026, 3, 4, 11)  # sharp
    before, after = meter.energy_at(t1), meter.energy_at(t2)
    growth = {k: round(after[k] - before[k], 2) for k in after}
    assert {k for k, v in growth.items() if v} == {"total", "sharp"}
    assert abs(growth["sharp"] - integral_kwh(meter, t1, t2)) <= 0.011
    day = meter.energy_at(at(2026, 3, 5))
    previous = meter.energy_at(at(2026, 3, 4))
    assert all(day[k] > previous[k] for k in ("total", *TARIFFS))


def test_tariffs_sum_to_total_and_registers_are_monotonic() -> None:
    meter = simulated()
    last: dict[str, float] | None = None
    for t in hours(at(2026, 3, 2, 0, 3), 24 * 7, 613):
        regs = meter.energy_at(t)
        assert -1e-9 <= regs["total"] - sum(regs[k] for k in TARIFFS) <= 0.04 + 1e-9
        assert all(round(v, 2) == v for v in regs.values())
        if last is not None:
            assert all(regs[k] >= last[k] for k in regs)
        last = regs


def test_first_register_is_the_initial_value() -> None:
    meter = simulated(initial_energy=100.0)
    regs = meter.energy_at(INSTALLED)
    assert regs["total"] == 100.0
    assert [regs[k] for k in TARIFFS] == [10.0, 35.0, 25.0, 30.0]


def test_values_do_not_depend_on_query_order() -> None:
    far = INSTALLED + timedelta(weeks=8, hours=3, seconds=7)
    direct = simulated().energy_at(far)
    walked = simulated()
    for day in range(0, 57, 3):
        walked.energy_at(INSTALLED + timedelta(days=day, hours=5))
    assert walked.energy_at(far) == direct
    assert simulated().snapshot(far) == walked.snapshot(far)


def test_same_seed_same_meter_other_seed_differs() -> None:
    t = at(2026, 3, 4, 10, 30)
    assert simulated(seed=7).snapshot(t) == simulated(seed=7).snapshot(t)
    assert simulated(seed=7).energy_at(t) != simulated(seed=8).energy_at(t)
    assert simulated(seed=7).snapshot(t).power != simulated(seed=8).snapshot(t).power


def test_rollover_wraps_the_register() -> None:
    wrap_at = at(2026, 3, 4, 8)
    meter = simulated(faults=(Rollover(at=wrap_at, margin=5.0),))
    assert meter.energy_at(wrap_at)["total"] == 999_995.0
    later = at(2026, 3, 4, 12)
    after = meter.energy_at(later)["total"]
    assert after < 1000.0  # wrapped past 999999.99 to a small value
    expected = integral_kwh(meter, wrap_at, later, step=5.0)
    assert abs(after + 1_000_000.0 - 999_995.0 - expected) <= 0.011
    assert all(v < 1_000_000.0 for v in meter.energy_at(later).values())


def test_replacement_restarts_the_counter_and_the_registry() -> None:
    swap = at(2026, 3, 4, 14)
    meter = simulated(faults=(Replacement(at=swap),))
    old, new = meter.installations
    assert (old.code, old.installed_at, old.removed_at) == ("T-E-000001", INSTALLED, swap)
    assert (new.code, new.installed_at, new.removed_at, new.replaces) == (
        "T-E-000001-R1",
        swap,
        None,
        "T-E-000001",
    )
    assert meter.installation_at(swap - timedelta(seconds=1)) == old
    assert meter.installation_at(swap) == new
    assert meter.energy_at(swap - timedelta(seconds=1))["total"] > 2000.0
    assert meter.energy_at(swap) == dict.fromkeys(meter.register_names, 0.0)
    hour = meter.energy_at(swap + timedelta(hours=1))["total"]
    assert abs(hour - integral_kwh(meter, swap, swap + timedelta(hours=1))) <= 0.011


def test_replacement_with_a_named_meter_and_initial_value() -> None:
    swap = at(2026, 3, 4, 14)
    meter = simulated(faults=(Replacement(at=swap, new_code="NEW-1", initial_energy=3.5),))
    assert meter.installations[1].code == "NEW-1"
    assert meter.energy_at(swap)["total"] == 3.5


def test_not_installed_and_naive_times() -> None:
    meter = simulated()
    with pytest.raises(NotInstalledError):
        meter.energy_at(INSTALLED - timedelta(seconds=1))
    with pytest.raises(NotInstalledError):
        meter.snapshot(INSTALLED - timedelta(days=3))
    with pytest.raises(NaiveTimeError):
        meter.snapshot(datetime(2026, 3, 4, 10))


def test_clock_drift_moves_the_reported_time() -> None:
    start, end = at(2026, 3, 1), at(2026, 3, 20)
    meter = simulated(faults=(ClockDrift(seconds_per_day=10.0, start=start, end=end),))
    t = at(2026, 3, 4)
    assert meter.clock(t) == t + timedelta(seconds=30)
    assert meter.snapshot(t).ts == t + timedelta(seconds=30)
    assert meter.snapshot(t).energy == simulated().snapshot(t).energy
    assert meter.clock(start - timedelta(days=1)) == start - timedelta(days=1)
    assert meter.clock(end) == end
    losing = simulated(faults=(ClockDrift(seconds_per_day=-2.0),))  # since installation
    assert losing.clock(INSTALLED + timedelta(days=10)) == INSTALLED + timedelta(
        days=10, seconds=-20
    )


def test_garbage_values_replace_one_value() -> None:
    meter = simulated(faults=(GarbageValues(),))
    clean = simulated()
    absurd = 0
    for t in hours(at(2026, 3, 4, 8), 4, 600):
        bad, good = meter.snapshot(t), clean.snapshot(t)
        assert meter.snapshot(t, faults=False) == good
        changed = [f for f in VALUE_FIELDS if getattr(bad, f) != getattr(good, f)]
        assert len(changed) == 1
        value = getattr(bad, changed[0])
        assert math.isnan(value) or value >= 1e12 or value < 0 or value == 4294967295.0
        absurd += 1
    assert absurd == 25


def test_low_voltage_snapshot_is_consistent() -> None:
    meter = simulated()
    for t in hours(at(2026, 3, 4), 24, 1800):
        r = meter.snapshot(t)
        assert r.ts == t and r.meter_id == 1 and r.source == "sim-dlt645"
        volts = [v for v in (r.voltage_a, r.voltage_b, r.voltage_c) if v is not None]
        amps = [i for i in (r.current_a, r.current_b, r.current_c) if i is not None]
        assert len(volts) == len(amps) == 3 and all(215.0 <= v <= 235.0 for v in volts)
        assert r.power_factor is not None and 0.85 <= r.power_factor <= 0.98
        assert r.power is not None and r.power <= 100.0
        assert r.power == pytest.approx(meter.power_kw(t), abs=5e-5)
        watts = sum(v * i for v, i in zip(volts, amps, strict=True)) * r.power_factor
        assert watts == pytest.approx(r.power * 1000, rel=2e-3)
        regs = meter.energy_at(t)
        assert [r.energy, r.energy_sharp, r.energy_peak, r.energy_flat, r.energy_valley] == [
            regs[k] for k in ("total", *TARIFFS)
        ]


def test_high_voltage_meter_reads_57_7_volt_secondaries() -> None:
    meter = simulated(ct=10.0, pt=100.0, rated_power=567.0)
    r = meter.snapshot(at(2026, 3, 4, 10))
    volts = [v for v in (r.voltage_a, r.voltage_b, r.voltage_c) if v is not None]
    assert len(volts) == 3 and all(56.0 <= v <= 61.5 for v in volts)
    assert r.current_a is not None and 0.05 < r.current_a < 6.0  # x/5 A CTs


def test_water_meter_has_volume_and_flow_only() -> None:
    meter = simulated(
        utility=Utility.WATER,
        protocol="mqtt",
        address=MqttAddress("mqtt-0001", 1),
        rated_power=8.0,
    )
    t1, t2 = at(2026, 3, 4, 8), at(2026, 3, 4, 12)
    assert meter.register_names == ("total",)
    assert set(meter.energy_at(t1)) == {"total"}
    delta = meter.energy_at(t2)["total"] - meter.energy_at(t1)["total"]
    assert abs(delta - integral_kwh(meter, t1, t2, step=5.0)) <= 0.011
    values = meter.values(t1)
    assert list(values) == ["energy", "power"]
    assert values["energy"] == meter.energy_at(t1)["total"]
    assert values["power"] == pytest.approx(meter.power_kw(t1), abs=5e-5)


def test_values_lists_the_present_fields() -> None:
    meter = simulated()
    values = meter.values(at(2026, 3, 4, 10))
    assert list(values) == list(VALUE_FIELDS)
    assert values["energy"] == meter.energy_at(at(2026, 3, 4, 10))["total"]


def test_build_meters_of_a_city_and_a_gateway() -> None:
    city = small_city()
    meters = build_meters(city)
    assert [m.spec.code for m in meters] == ["T-E-000001", "T-W-000002", "T-E-000003"]
    assert [m.spec.code for m in build_meters(city, gateway="dlt-001")] == [
        "T-E-000001",
        "T-E-000003",
    ]
    t = at(2026, 3, 4, 10)
    assert meters[0].load.industry.code == "C2438" and meters[2].load.industry.code == "C1713"
    assert meters[0].energy_at(t) == build_meters(small_city())[0].energy_at(t)
    assert meters[0].energy_at(t) != build_meters(small_city(seed=8))[0].energy_at(t)

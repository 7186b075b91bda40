"""How fast a city of simulated meters answers (slow: run with `make test-all`)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from simulators.city import DEFAULT_START, generate_city
from simulators.meter import build_meters


@pytest.mark.slow
def test_a_day_of_quarter_hours_for_2000_meters() -> None:
    city = generate_city(firms=1400, seed=3)
    meters = build_meters(city)[:2000]
    assert len(meters) == 2000
    day = DEFAULT_START - timedelta(days=30)
    began = time.perf_counter()
    for meter in meters:  # integrates the 30-90 days since installation once
        meter.energy_at(day)
    warmed = time.perf_counter()
    count = 0
    for meter in meters:
        for step in range(96):
            meter.snapshot(day + timedelta(minutes=15 * step))
            count += 1
    done = time.perf_counter()
    print(f"\nwarm-up {warmed - began:.1f} s, {count} snapshots {done - warmed:.1f} s")
    assert count == 192_000
    assert done - warmed < 20.0  # about 2 s on an idle machine; generous for loaded CI
    assert done - began < 90.0

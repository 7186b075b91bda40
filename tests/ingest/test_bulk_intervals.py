"""`derive_bulk` against the reference `derive`, meter by meter, on random fleets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.bulk_intervals import ReadingColumns, Windows, derive_bulk
from ingest.interval_grid import ceil_to_grid, floor_to_grid, to_micros
from ingest.intervals import derive
from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, Reading, Utility

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=LOCAL_TZ)
Q = timedelta(minutes=15)
_DT = st.one_of(
    st.just(900),
    st.integers(895, 905),  # jitter
    st.integers(0, 400),  # dense readings and duplicate ts
    st.integers(1201, 4 * 3600),  # gaps
)
_ACTION = st.sampled_from(["use"] * 6 + ["reset", "excess", "no-energy", "no-tariffs", "partial"])


def columns(readings: Sequence[Reading]) -> ReadingColumns:
    def value(x: float | None) -> float:
        return np.nan if x is None else x

    tariffs = [
        [value(getattr(r, f"energy_{t}")) for r in readings]
        for t in ("sharp", "peak", "flat", "valley")
    ]
    return ReadingColumns(
        meter_id=np.array([r.meter_id for r in readings], dtype=np.int64),
        ts=np.array([to_micros(r.ts) for r in readings], dtype=np.int64),
        energy=np.array([value(r.energy) for r in readings], dtype=np.float64),
        tariffs=np.array(tariffs, dtype=np.float64).reshape(4, len(readings)),
    )


def windows(meters: Sequence[MeterInfo], bounds: Sequence[tuple[datetime, datetime]]) -> Windows:
    return Windows(
        meter_id=np.array([m.meter_id for m in meters], dtype=np.int64),
        start=np.array([to_micros(a) for a, _ in bounds], dtype=np.int64),
        end=np.array([to_micros(b) for _, b in bounds], dtype=np.int64),
        multiplier=np.array([m.multiplier for m in meters]),
        rollover=np.array([m.rollover for m in meters]),
        max_power=np.array([m.max_power for m in meters]),
    )


@st.composite
def meter_info(draw: st.DrawFn, meter_id: int) -> MeterInfo:
    return MeterInfo(
        meter_id=meter_id,
        firm_id=1,
        utility=Utility.ELECTRICITY,
        multiplier=draw(st.sampled_from([1.0, 40.0, 0.3, 120.0])),
        rollover=draw(st.sampled_from([1_000_000.0, 10_000.0])),
        max_power=draw(st.sampled_from([20.0, 5.0, 400.0])),
        installed_at=T0 - timedelta(days=365),
    )


@st.composite
def series(draw: st.DrawFn, meter: MeterInfo) -> list[Reading]:
    """Jitter, gaps, duplicate ts, rollovers, resets, excess and missing registers."""
    ts = T0 + timedelta(seconds=draw(st.integers(0, 3600)))
    energy = draw(st.sampled_from([0.0, 5000.0, meter.rollover - 10.0]))
    out: list[Reading] = []
    for _ in range(draw(st.integers(0, 30))):
        ts += timedelta(seconds=draw(_DT))
        action = draw(_ACTION)
        if action == "reset":
            energy = draw(st.integers(0, 500)) / 100
        elif action == "excess":
            energy += 5000.0
        else:
            energy = round((energy + draw(st.integers(0, 300)) / 100) % meter.rollover, 2)
        tariffs = [round(energy * share, 2) for share in (0.1, 0.4, 0.3, 0.2)]
        if action == "no-tariffs":
            tariffs = [None] * 4  # type: ignore[list-item]
        elif action == "partial":
            tariffs[draw(st.integers(0, 3))] = None  # type: ignore[call-overload]
        value = None if action == "no-energy" else energy
        sharp, peak, flat, valley = tariffs
        out.append(
            Reading(
                meter.meter_id,
                ts,
                energy=value,
                energy_sharp=sharp,
                energy_peak=peak,
                energy_flat=flat,
                energy_valley=valley,
            )
        )
    return out


@st.composite
def fleet(
    draw: st.DrawFn,
) -> tuple[list[MeterInfo], list[list[Reading]], list[tuple[datetime, datetime]]]:
    ids = sorted(draw(st.sets(st.integers(1, 10_000), min_size=1, max_size=5)))
    meters = [draw(meter_info(i)) for i in ids]
    per_meter = [draw(series(m)) for m in meters]
    bounds = []
    for rs in per_meter:
        lo = floor_to_grid(rs[0].ts) if rs else T0
        hi = ceil_to_grid(rs[-1].ts) + Q if rs else T0 + 4 * Q
        quarters = int((hi - lo) / Q)
        a = draw(st.integers(-2, quarters + 1))
        b = draw(st.integers(a, quarters + 2))
        bounds.append((lo + a * Q, lo + b * Q))
    return meters, per_meter, bounds


def _check(
    meters: list[MeterInfo],
    per_meter: list[list[Reading]],
    bounds: list[tuple[datetime, datetime]],
) -> None:
    flat = [r for rs in per_meter for r in rs]
    got = derive_bulk(windows(meters, bounds), columns(flat)).by_meter([m.meter_id for m in meters])
    for m, rs, (ws, we) in zip(meters, per_meter, bounds, strict=True):
        want = derive(m, rs, window_start=ws, window_end=we)
        assert got[m.meter_id] == want
        # Bit for bit, not only ==: the same floats, not merely close ones.
        assert [i.energy.hex() for i in got[m.meter_id].intervals] == [
            i.energy.hex() for i in want.intervals
        ]


@settings(max_examples=500, deadline=None)
@given(fleet())
def test_bulk_equals_derive_per_meter(
    case: tuple[list[MeterInfo], list[list[Reading]], list[tuple[datetime, datetime]]],
) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(fleet())
def test_bulk_equals_derive_per_meter_long(
    case: tuple[list[MeterInfo], list[list[Reading]], list[tuple[datetime, datetime]]],
) -> None:
    _check(*case)


def _meter(meter_id: int) -> MeterInfo:
    return MeterInfo(meter_id, 1, Utility.ELECTRICITY, 40.0, 1e6, 100.0, T0 - timedelta(days=1))


def test_a_year_of_quarter_hours_for_many_meters_equals_derive() -> None:
    rng = np.random.default_rng(3)
    meters = [_meter(i) for i in range(1, 21)]
    per_meter = []
    for m in meters:
        steps = rng.integers(0, 300, size=2000) / 100
        energies = np.round(1000 + np.cumsum(steps), 2)
        per_meter.append(
            [
                Reading(m.meter_id, T0 + i * Q, energy=float(e), energy_sharp=float(e) / 3)
                for i, e in enumerate(energies)
                if i % 97 != 5  # a missing reading now and then: gaps
            ]
        )
    bounds = [(T0, T0 + 2000 * Q)] * len(meters)
    _check(meters, per_meter, bounds)


def test_unsorted_readings_are_refused_like_derive() -> None:
    m = _meter(7)
    rs = [Reading(7, T0 + Q, energy=2.0), Reading(7, T0, energy=1.0)]
    with pytest.raises(ValueError, match="not sorted"):
        derive(m, rs, window_start=T0, window_end=T0 + 2 * Q)
    with pytest.raises(ValueError, match="not sorted"):
        derive_bulk(windows([m], [(T0, T0 + 2 * Q)]), columns(rs))
    other = [Reading(8, T0, energy=1.0), Reading(7, T0 + Q, energy=2.0)]
    with pytest.raises(ValueError, match=r"without a window|not sorted"):
        derive_bulk(windows([m, _meter(8)], [(T0, T0 + Q)] * 2), columns(other))


def test_readings_of_a_meter_without_a_window_are_refused() -> None:
    with pytest.raises(ValueError, match="without a window"):
        derive_bulk(windows([_meter(7)], [(T0, T0 + Q)]), columns([Reading(9, T0, energy=1.0)]))


def test_windows_off_the_grid_are_refused() -> None:
    off = T0 + timedelta(minutes=1)
    with pytest.raises(ValueError, match="grid"):
        derive_bulk(windows([_meter(7)], [(off, T0 + Q)]), columns([]))

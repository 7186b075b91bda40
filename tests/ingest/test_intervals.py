from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.interval_grid import affected_window, ceil_to_grid, floor_to_grid
from ingest.intervals import (
    Derivation,
    Interval,
    IntervalEvent,
    context_slice,
    derive,
)
from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, Reading, Utility

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=LOCAL_TZ)
Q = timedelta(minutes=15)
MIDNIGHT = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)


def meter(multiplier: float = 1.0, max_power: float = 100.0) -> MeterInfo:
    return MeterInfo(
        meter_id=7,
        firm_id=1,
        utility=Utility.ELECTRICITY,
        multiplier=multiplier,
        rollover=1_000_000.0,
        max_power=max_power,
        installed_at=T0 - timedelta(days=365),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rd(minutes: float, energy: float | None, **kw: Any) -> Reading:
    return Reading(meter_id=7, ts=at(minutes), energy=energy, **kw)


def iv(minutes: float, energy: float, **kw: Any) -> Interval:
    fields: dict[str, Any] = {
        "sharp": None,
        "peak": None,
        "flat": None,
        "valley": None,
        "estimated": False,
        "complete": True,
    }
    fields.update(kw)
    return Interval(meter_id=7, start=at(minutes), energy=energy, **fields)


def run(m: MeterInfo, readings: Sequence[Reading], hours: int = 4, **kw: Any) -> Derivation:
    return derive(m, readings, window_start=T0, window_end=T0 + timedelta(hours=hours), **kw)


# --- the grid ------------------------------------------------------------------------------


def test_shanghai_midnight_is_a_grid_point() -> None:
    utc_midnight = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert floor_to_grid(datetime(2026, 2, 28, 16, 7, 30, tzinfo=UTC)) == utc_midnight
    assert floor_to_grid(utc_midnight) == MIDNIGHT
    assert ceil_to_grid(utc_midnight) == MIDNIGHT
    assert ceil_to_grid(datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC)) == MIDNIGHT
    assert floor_to_grid(utc_midnight).tzinfo is LOCAL_TZ


@pytest.mark.parametrize(
    ("ts", "floor", "ceil"),
    [
        (datetime(2026, 3, 1, 8, 0, 3, tzinfo=LOCAL_TZ), at(0), at(15)),
        (datetime(2026, 3, 1, 8, 14, 59, 999999, tzinfo=LOCAL_TZ), at(0), at(15)),
        (datetime(2026, 3, 1, 0, 20, tzinfo=UTC), at(15), at(30)),
    ],
)
def test_floor_and_ceil(ts: datetime, floor: datetime, ceil: datetime) -> None:
    assert (floor_to_grid(ts), ceil_to_grid(ts)) == (floor, ceil)


def test_other_steps_align_to_local_midnight() -> None:
    ts = datetime(2026, 2, 28, 17, 59, tzinfo=UTC)  # 01:59 local
    assert floor_to_grid(ts, timedelta(hours=1)) == MIDNIGHT + timedelta(hours=1)
    assert ceil_to_grid(ts, timedelta(hours=8)) == MIDNIGHT + timedelta(hours=8)
    assert floor_to_grid(ts, timedelta(days=1)) == MIDNIGHT


@pytest.mark.parametrize("step", [timedelta(minutes=7), timedelta(0), timedelta(minutes=-15)])
def test_step_must_divide_a_day(step: timedelta) -> None:
    with pytest.raises(ValueError, match="divide a day"):
        floor_to_grid(T0, step)


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        floor_to_grid(datetime(2026, 3, 1, 8, 0))


# --- deltas --------------------------------------------------------------------------------


def test_regular_readings_times_multiplier() -> None:
    readings = [rd(0, 100.0), rd(15, 100.5), rd(30, 101.25), rd(45, 101.25)]
    result = run(meter(multiplier=40.0), readings)
    assert result == Derivation((iv(0, 20.0), iv(15, 30.0), iv(30, 0.0)), ())


def test_jittered_readings_are_prorated_but_not_estimated() -> None:
    s = timedelta(seconds=1)
    readings = [
        Reading(7, at(0) + 3 * s, energy=10.0),  # 08:00:03
        Reading(7, at(15) + 2 * s, energy=10.899),  # 899 s later, 0.001 kWh/s
        Reading(7, at(30) + 1 * s, energy=11.798),  # 899 s later
    ]
    assert run(meter(), readings).intervals == (
        iv(0, 0.897, complete=False),
        iv(15, 0.9),
        iv(30, 0.001, complete=False),
    )
    assert run(meter(), readings).events == ()


def test_rollover_uses_the_wrapped_delta() -> None:
    result = run(meter(multiplier=40.0), [rd(0, 999999.50), rd(15, 0.70), rd(30, 1.70)])
    assert result.intervals == (iv(0, 48.0), iv(15, 40.0))
    [event] = result.events
    assert (event.kind, event.start, event.end) == ("rollover", at(0), at(15))
    assert event.detail == {"e0": 999999.50, "e1": 0.70, "delta": pytest.approx(1.2)}


def test_reset_is_recorded_and_never_negative() -> None:
    readings = [rd(0, 4999.0), rd(15, 5000.0), rd(30, 12.0), rd(45, 12.5)]
    result = run(meter(), readings)
    assert result.intervals == (iv(0, 1.0), iv(30, 0.5))
    assert result.events == (IntervalEvent(7, "reset", at(15), at(30), {"e0": 5000.0, "e1": 12.0}),)


def test_reset_inside_an_interval_leaves_it_incomplete() -> None:
    readings = [rd(0, 10.0), rd(5, 11.0), rd(10, 0.5), rd(15, 1.0)]
    result = run(meter(), readings)
    assert result.intervals == (iv(0, 1.5, complete=False),)
    assert [e.kind for e in result.events] == ["reset"]


def test_excess_delta_is_flagged_and_not_summed() -> None:
    # 10 kW for 15 min with 20 % headroom: at most 3 kWh.
    readings = [rd(0, 100.0), rd(15, 101.0), rd(30, 150.0), rd(45, 151.0)]
    result = run(meter(max_power=10.0), readings)
    assert result.intervals == (iv(0, 1.0), iv(30, 1.0))
    [event] = result.events
    assert (event.kind, event.start, event.end) == ("excess", at(15), at(30))
    assert event.detail == {
        "e0": 101.0,
        "e1": 150.0,
        "delta": 49.0,
        "max_delta": pytest.approx(3.01),  # plus one register step of slack
    }


def test_delta_at_the_cap_is_accepted() -> None:
    # cap 12 kW * 0.25 h = 3 kWh, plus one 0.01 register step
    readings = [rd(0, 100.0), rd(15, 103.01), rd(30, 106.03)]
    result = run(meter(max_power=12.0), readings, headroom=1.0)
    assert result.intervals == (iv(0, 3.01),)
    assert [e.kind for e in result.events] == ["excess"]


def test_one_register_step_within_seconds_is_not_excess() -> None:
    readings = [rd(0, 100.0), rd(0.05, 100.01)]  # 3 s apart; 1 kW could deliver 0.0008 kWh
    result = run(meter(max_power=1.0), readings)
    assert result.events == ()


def test_hour_gap_is_spread_over_four_estimated_intervals() -> None:
    readings = [rd(0, 100.0), rd(60, 104.0), rd(75, 104.5)]
    result = run(meter(multiplier=2.0), readings)
    gap = [iv(m, 2.0, estimated=True) for m in (0, 15, 30, 45)]
    assert result.intervals == (*gap, iv(60, 1.0))
    assert result.events == (IntervalEvent(7, "gap", at(0), at(60), {"seconds": 3600.0}),)


def test_interval_partly_in_a_gap_is_estimated() -> None:
    readings = [rd(0, 0.0), rd(50, 5.0), rd(60, 6.0)]  # 0.1 kWh per minute throughout
    gap = [iv(m, 1.5, estimated=True) for m in (0, 15, 30, 45)]
    assert run(meter(), readings).intervals == tuple(gap)


def test_gap_threshold_is_step_plus_five_minutes() -> None:
    readings = [rd(0, 0.0), rd(20, 2.0), rd(40 + 1 / 60, 4.0)]
    result = run(meter(), readings)
    assert [e.start for e in result.events] == [at(20)]
    assert [i.estimated for i in result.intervals] == [False, True, True]
    custom = run(meter(), readings, max_gap=timedelta(minutes=10))
    assert [e.kind for e in custom.events] == ["gap", "gap"]


def test_gap_with_reset_reports_both() -> None:
    result = run(meter(), [rd(0, 500.0), rd(60, 3.0)])
    assert result.intervals == ()
    assert [e.kind for e in result.events] == ["gap", "reset"]


def test_partly_covered_intervals_are_incomplete() -> None:
    readings = [rd(5, 10.0), rd(20, 11.5), rd(35, 13.0)]
    assert run(meter(), readings).intervals == (
        iv(0, 1.0, complete=False),
        iv(15, 1.5),
        iv(30, 0.5, complete=False),
    )


def test_readings_without_energy_are_skipped() -> None:
    readings = [rd(0, 100.0), rd(15, None, power=3.0), rd(30, 102.0)]
    result = run(meter(), readings)
    assert result.intervals == (iv(0, 1.0, estimated=True), iv(15, 1.0, estimated=True))
    assert [e.kind for e in result.events] == ["gap"]


def test_duplicate_timestamps_keep_the_first_reading() -> None:
    readings = [rd(0, 100.0), rd(15, 101.0), rd(15, 999.0), rd(30, 102.0)]
    assert run(meter(), readings) == Derivation((iv(0, 1.0), iv(15, 1.0)), ())


def test_out_of_order_readings_are_rejected() -> None:
    with pytest.raises(ValueError, match="not sorted by ts"):
        run(meter(), [rd(0, 100.0), rd(30, 102.0), rd(15, 101.0)])


def test_readings_of_another_meter_are_rejected() -> None:
    with pytest.raises(ValueError, match="meter 8"):
        run(meter(), [rd(0, 1.0), Reading(8, at(15), energy=2.0)])


@pytest.mark.parametrize("readings", [[], [rd(0, 1.0)], [rd(0, 1.0), rd(0, 2.0)]])
def test_fewer_than_two_readings_give_nothing(readings: list[Reading]) -> None:
    assert run(meter(), readings) == Derivation((), ())


def test_tariff_registers_per_interval() -> None:
    readings = [
        rd(0, 60.0, energy_sharp=10.0, energy_peak=20.0, energy_flat=30.0),
        rd(15, 60.75, energy_sharp=10.5, energy_peak=20.25, energy_flat=30.0),
        rd(30, 61.35, energy_sharp=11.0, energy_peak=20.25, energy_flat=30.1, energy_valley=5.0),
    ]
    assert run(meter(multiplier=2.0), readings).intervals == (
        iv(0, 1.5, sharp=1.0, peak=0.5, flat=0.0),
        iv(15, 1.2, sharp=1.0, peak=0.0, flat=0.2),
    )


def test_tariff_missing_in_one_pair_makes_the_interval_tariff_unknown() -> None:
    readings = [
        rd(5, 0.0, energy_sharp=0.0),
        rd(10, 1.0, energy_sharp=1.0),
        rd(15, 2.0),
        rd(20, 3.0, energy_sharp=2.0),
    ]
    assert run(meter(), readings).intervals == (
        iv(0, 2.0, sharp=None, complete=False),
        iv(15, 1.0, sharp=None, complete=False),
    )


def test_tariff_rollover_and_reset() -> None:
    readings = [
        rd(0, 10.0, energy_sharp=999999.9, energy_peak=50.0),
        rd(15, 10.5, energy_sharp=0.2, energy_peak=1.0),
    ]
    assert run(meter(), readings).intervals == (iv(0, 0.5, sharp=0.3, peak=None),)


# --- windows -------------------------------------------------------------------------------


def test_window_at_shanghai_midnight() -> None:
    start = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    readings = [
        Reading(7, MIDNIGHT - 2 * Q, energy=1.0),
        Reading(7, MIDNIGHT + 2 * Q, energy=5.0),  # a one-hour gap across midnight
        Reading(7, MIDNIGHT + 3 * Q, energy=6.0),
        Reading(7, MIDNIGHT + 4 * Q, energy=2.0),  # a reset after the window
    ]
    result = derive(meter(), readings, window_start=start, window_end=start + 2 * Q)
    assert [(i.start, i.energy, i.estimated) for i in result.intervals] == [
        (MIDNIGHT, 1.0, True),
        (MIDNIGHT + Q, 1.0, True),
    ]
    assert result.intervals[0].start == start
    assert [(e.kind, e.start) for e in result.events] == [("gap", MIDNIGHT - 2 * Q)]


def test_events_only_for_pairs_overlapping_the_window() -> None:
    readings = [rd(0, 100.0), rd(15, 1.0), rd(30, 2.0), rd(45, 1.0)]
    result = derive(meter(), readings, window_start=at(15), window_end=at(30))
    assert result == Derivation((iv(15, 1.0),), ())


@pytest.mark.parametrize(("start", "end"), [(at(1), at(30)), (at(0), at(31)), (at(30), at(0))])
def test_window_must_be_on_the_grid_and_ordered(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="window"):
        derive(meter(), [], window_start=start, window_end=end)


def test_other_step_lengths() -> None:
    hour = timedelta(hours=1)
    readings = [rd(0, 0.0), rd(60, 10.0), rd(120, 30.0), rd(300, 60.0)]
    result = run(meter(), readings, hours=6, step=hour, max_gap=2 * hour)
    assert [(i.start, i.energy, i.estimated) for i in result.intervals] == [
        (at(0), 10.0, False),
        (at(60), 20.0, False),
        (at(120), 10.0, True),
        (at(180), 10.0, True),
        (at(240), 10.0, True),
    ]


def test_intervals_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        iv(0, 1.0).energy = 2.0  # type: ignore[misc]


# --- the recompute contract ----------------------------------------------------------------


def test_affected_window() -> None:
    window = affected_window(
        batch_start=at(20), batch_end=at(50), previous=at(10), following=at(65)
    )
    assert window == (at(0), at(75))
    on_grid = affected_window(
        batch_start=at(20), batch_end=at(20), previous=at(15), following=at(30)
    )
    assert on_grid == (at(15), at(30))
    edges = affected_window(batch_start=at(20), batch_end=at(50), previous=None, following=None)
    assert edges == (at(15), at(60))
    with pytest.raises(ValueError, match="previous"):
        affected_window(batch_start=at(20), batch_end=at(50), previous=at(20), following=None)


def test_context_reaches_back_past_dense_readings() -> None:
    readings = [
        rd(-10, 0.0),
        rd(5, 1.5),
        rd(10, None),
        rd(12, 2.0),
        rd(20, 3.0),  # the late reading
        rd(45, 4.0),
        rd(60, 5.0),
    ]
    ws, we = affected_window(
        batch_start=at(20), batch_end=at(20), previous=at(12), following=at(45)
    )
    assert (ws, we) == (at(0), at(45))
    context = context_slice(readings, window_start=ws, window_end=we)
    assert list(context) == readings[:6]
    full = derive(meter(), readings, window_start=ws, window_end=we)
    assert derive(meter(), context, window_start=ws, window_end=we) == full
    assert full.intervals[0] == iv(0, 1.375)  # 0.5 of 07:50-08:05, 0.5, 3/8 of 1.0
    # Context of "the 2nd-last reading before the batch" would miss 07:50-08:05 here.
    short = derive(meter(), readings[1:6], window_start=ws, window_end=we)
    assert short.intervals[0] == iv(0, 0.875, complete=False)


# --- properties ----------------------------------------------------------------------------

_MAX_POWER = 20.0  # kW: at most 6 kWh per 15 minutes with 20 % headroom
_DT = st.one_of(
    st.just(900),
    st.integers(895, 905),  # jitter
    st.integers(0, 400),  # dense readings and duplicates
    st.integers(1201, 4 * 3600),  # gaps
)
_ACTION = st.sampled_from(["use"] * 6 + ["reset", "excess", "no-energy", "no-tariffs"])


@st.composite
def reading_series(draw: st.DrawFn) -> list[Reading]:
    """Readings with jitter, gaps, duplicates, rollovers, resets, excess and missing values."""
    ts = T0 + timedelta(seconds=draw(st.one_of(st.just(0), st.integers(0, 3600))))
    energy = draw(st.sampled_from([0.0, 5000.0, 999_990.0]))
    out: list[Reading] = []
    for _ in range(draw(st.integers(0, 25))):
        ts += timedelta(seconds=draw(_DT))
        action = draw(_ACTION)
        if action == "reset":
            energy = draw(st.integers(0, 500)) / 100
        elif action == "excess":
            energy += 5000.0
        else:
            energy = round((energy + draw(st.integers(0, 300)) / 100) % 1_000_000, 2)
        sharp = None if action == "no-tariffs" else round(energy * 0.3, 2)
        value = None if action == "no-energy" else energy
        out.append(Reading(7, ts, energy=value, energy_sharp=sharp, power=1.0))
    return out


def _span(readings: Sequence[Reading]) -> tuple[datetime, datetime]:
    return floor_to_grid(readings[0].ts), ceil_to_grid(readings[-1].ts) + Q


def _neighbours(
    readings: Sequence[Reading], a: datetime, b: datetime
) -> tuple[datetime | None, datetime | None]:
    stamps = [r.ts for r in readings if r.energy is not None]
    before = [t for t in stamps if t < a]
    after = [t for t in stamps if t > b]
    return (before[-1] if before else None), (after[0] if after else None)


def _in_window(start: datetime, ws: datetime, we: datetime) -> bool:
    return ws <= start < we


def _check_subwindow(readings: list[Reading], data: st.DataObject) -> None:
    """Deriving a window from its context equals deriving the whole history."""
    m = meter(multiplier=40.0, max_power=_MAX_POWER)
    if not readings:
        return
    i = data.draw(st.integers(0, len(readings) - 1))
    j = data.draw(st.integers(i, len(readings) - 1))
    a, b = readings[i].ts, readings[j].ts
    previous, following = _neighbours(readings, a, b)
    ws, we = affected_window(batch_start=a, batch_end=b, previous=previous, following=following)
    part = derive(
        m, context_slice(readings, window_start=ws, window_end=we), window_start=ws, window_end=we
    )
    assert part == derive(m, readings, window_start=ws, window_end=we)
    full_start, full_end = _span(readings)
    full = derive(m, readings, window_start=full_start, window_end=full_end)
    assert part.intervals == tuple(i for i in full.intervals if _in_window(i.start, ws, we))
    assert part.events == tuple(e for e in full.events if e.start < we and e.end > ws)


def _check_incremental(readings: list[Reading], data: st.DataObject) -> None:
    """Storing a batch and replacing its window equals deriving everything afresh."""
    m = meter(multiplier=40.0, max_power=_MAX_POWER)
    unique = list({r.ts: r for r in reversed(readings)}.values())[::-1]  # the table's key
    in_batch = [data.draw(st.booleans()) for _ in unique]
    batch = [r for r, x in zip(unique, in_batch, strict=True) if x]
    stored = [r for r, x in zip(unique, in_batch, strict=True) if not x]
    if not batch:
        return
    span_start, span_end = _span(unique)
    before = derive(m, stored, window_start=span_start, window_end=span_end)
    previous, following = _neighbours(stored, batch[0].ts, batch[-1].ts)
    ws, we = affected_window(
        batch_start=batch[0].ts, batch_end=batch[-1].ts, previous=previous, following=following
    )
    part = derive(
        m, context_slice(unique, window_start=ws, window_end=we), window_start=ws, window_end=we
    )
    kept = [i for i in before.intervals if not _in_window(i.start, ws, we)]
    kept_events = [e for e in before.events if not (e.start < we and e.end > ws)]
    after = derive(m, unique, window_start=span_start, window_end=span_end)
    assert sorted([*kept, *part.intervals], key=lambda i: i.start) == list(after.intervals)

    def order(e: IntervalEvent) -> tuple[datetime, str]:
        return e.start, e.kind

    assert sorted([*kept_events, *part.events], key=order) == sorted(after.events, key=order)


_FAST = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_LONG = settings(
    max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FAST
@given(readings=reading_series(), data=st.data())
def test_subwindow_equals_full_history(readings: list[Reading], data: st.DataObject) -> None:
    _check_subwindow(readings, data)


@_FAST
@given(readings=reading_series(), data=st.data())
def test_incremental_recompute_equals_full_history(
    readings: list[Reading], data: st.DataObject
) -> None:
    _check_incremental(readings, data)


@pytest.mark.slow
@_LONG
@given(readings=reading_series(), data=st.data())
def test_subwindow_equals_full_history_long(readings: list[Reading], data: st.DataObject) -> None:
    _check_subwindow(readings, data)


@pytest.mark.slow
@_LONG
@given(readings=reading_series(), data=st.data())
def test_incremental_recompute_equals_full_history_long(
    readings: list[Reading], data: st.DataObject
) -> None:
    _check_incremental(readings, data)

"""Derivation with a CT/PT ratio history: each interval takes the ratio valid at its start."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.interval_grid import affected_window
from ingest.interval_ratios import ratio_pieces
from ingest.intervals import Interval, context_slice, derive
from meterhub.ratios import RatioHistory, micros
from meterhub.reading import Reading
from tests.ingest.test_intervals import (
    _MAX_POWER,
    T0,
    _neighbours,
    _span,
    at,
    iv,
    meter,
    rd,
    reading_series,
)

CHANGE = at(60)  # 09:00: CT 40 -> 80 (a CT swap), both with PT 1
HISTORY = RatioHistory.of([(T0 - timedelta(days=30), 40.0), (CHANGE, 80.0)])


def test_history_lookup() -> None:
    assert HISTORY.at(micros(CHANGE) - 1) == 40.0
    assert HISTORY.at(micros(CHANGE)) == 80.0
    assert HISTORY.at(micros(T0 - timedelta(days=400))) == 40.0  # before the first period
    stamps = np.array([micros(T0), micros(CHANGE), micros(at(90))], dtype=np.int64)
    assert HISTORY.at_many(stamps).tolist() == [40.0, 80.0, 80.0]
    assert HISTORY.constant_over(micros(T0), micros(CHANGE) - 1) == 40.0
    assert HISTORY.constant_over(micros(T0), micros(CHANGE)) is None


@pytest.mark.parametrize(
    "periods", [[], [(T0, 0.0)], [(T0, 1.0), (T0, 2.0)]], ids=["empty", "zero", "same start"]
)
def test_bad_histories_are_refused(periods: list[tuple[datetime, float]]) -> None:
    with pytest.raises(ValueError, match=r"ratio|multiplier"):
        RatioHistory.of(periods)


def test_regular_readings_take_the_ratio_of_their_interval() -> None:
    # 0.5 kWh secondary per quarter: 20 kWh primary at CT 40, 40 kWh at CT 80.
    readings = [rd(m, 100 + 0.5 * i) for i, m in enumerate(range(30, 105, 15))]
    got = derive(
        dataclasses.replace(meter(multiplier=80.0), ratios=HISTORY),
        readings,
        window_start=T0,
        window_end=at(120),
    )
    assert got.intervals == (iv(30, 20.0), iv(45, 20.0), iv(60, 40.0), iv(75, 40.0))


def test_a_pair_across_the_change_is_split_by_interval() -> None:
    # 08:30 -> 09:30 is one hour, 2 kWh secondary: 0.5 per quarter, CT 40 before 09:00.
    got = derive(
        dataclasses.replace(meter(multiplier=80.0), ratios=HISTORY),
        [rd(30, 100.0), rd(90, 102.0)],
        window_start=T0,
        window_end=at(120),
    )
    assert [(i.start, i.energy, i.estimated) for i in got.intervals] == [
        (at(30), 20.0, True),
        (at(45), 20.0, True),
        (at(60), 40.0, True),
        (at(75), 40.0, True),
    ]


def test_a_change_inside_an_interval_applies_from_the_next_one() -> None:
    history = RatioHistory.of([(T0 - timedelta(days=30), 40.0), (at(67), 80.0)])
    got = derive(
        dataclasses.replace(meter(multiplier=80.0), ratios=history),
        [rd(45, 10.0), rd(60, 10.5), rd(75, 11.0), rd(90, 11.5)],
        window_start=T0,
        window_end=at(120),
    )
    assert [i.energy for i in got.intervals] == [20.0, 20.0, 40.0]


def test_tariffs_take_the_same_ratio() -> None:
    readings = [rd(45 + 15 * i, 10.0 + 0.5 * i, energy_peak=4.0 + 0.25 * i) for i in range(3)]
    got = derive(
        dataclasses.replace(meter(multiplier=80.0), ratios=HISTORY),
        readings,
        window_start=T0,
        window_end=at(120),
    )
    assert [(i.energy, i.peak) for i in got.intervals] == [(20.0, 10.0), (40.0, 20.0)]


def test_no_history_and_a_one_period_history_agree() -> None:
    readings = [rd(m, 100 + 0.37 * i) for i, m in enumerate(range(0, 180, 7))]
    plain = derive(meter(multiplier=40.0), readings, window_start=T0, window_end=at(180))
    one = RatioHistory.of([(T0, 40.0)])
    same = derive(
        dataclasses.replace(meter(multiplier=40.0), ratios=one),
        readings,
        window_start=T0,
        window_end=at(180),
    )
    assert plain == same


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=reading_series(), data=st.data())
def test_subwindow_with_a_history_equals_full_history(
    readings: list[Reading], data: st.DataObject
) -> None:
    if not readings:
        return
    changes = data.draw(st.lists(st.integers(-60, 600), min_size=1, max_size=3, unique=True))
    periods = [(at(c), float(k + 2)) for k, c in enumerate(sorted(changes))]
    m = dataclasses.replace(
        meter(multiplier=40.0, max_power=_MAX_POWER), ratios=RatioHistory.of(periods)
    )
    i = data.draw(st.integers(0, len(readings) - 1))
    a, b = readings[i].ts, readings[data.draw(st.integers(i, len(readings) - 1))].ts
    previous, following = _neighbours(readings, a, b)
    ws, we = affected_window(batch_start=a, batch_end=b, previous=previous, following=following)
    part = derive(
        m, context_slice(readings, window_start=ws, window_end=we), window_start=ws, window_end=we
    )
    full_start, full_end = _span(readings)
    full = derive(m, readings, window_start=full_start, window_end=full_end)
    assert part.intervals == tuple(x for x in full.intervals if ws <= x.start < we)


def test_pieces_cut_where_the_multiplier_of_an_interval_changes() -> None:
    history = RatioHistory.of([(T0 - timedelta(days=1), 40.0), (at(67), 80.0), (at(90), 60.0)])
    m = dataclasses.replace(meter(multiplier=60.0), ratios=history)
    pieces = ratio_pieces(m, window_start=T0, window_end=at(180))
    assert pieces == [(T0, at(75), 40.0), (at(75), at(90), 80.0), (at(90), at(180), 60.0)]
    assert ratio_pieces(meter(multiplier=5.0), window_start=T0, window_end=at(30)) == [
        (T0, at(30), 5.0)
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=reading_series(), data=st.data())
def test_pieces_with_one_multiplier_each_equal_the_history(
    readings: list[Reading], data: st.DataObject
) -> None:
    if not readings:
        return
    changes = data.draw(st.lists(st.integers(-60, 600), min_size=1, max_size=3, unique=True))
    history = RatioHistory.of([(at(c), float(k + 2)) for k, c in enumerate(sorted(changes))])
    m = dataclasses.replace(meter(multiplier=40.0, max_power=_MAX_POWER), ratios=history)
    ws, we = _span(readings)
    whole = derive(m, readings, window_start=ws, window_end=we)
    intervals: list[Interval] = []
    events: set[tuple[str, datetime, datetime]] = set()
    for piece in ratio_pieces(m, window_start=ws, window_end=we):
        plain = dataclasses.replace(m, ratios=None, multiplier=piece.multiplier)
        part = derive(plain, readings, window_start=piece.start, window_end=piece.end)
        intervals += part.intervals
        events |= {(e.kind, e.start, e.end) for e in part.events}
    assert tuple(intervals) == whole.intervals
    assert events == {(e.kind, e.start, e.end) for e in whole.events}

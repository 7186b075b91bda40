"""`ingest.intervals.derive` for many meters and many readings at once, over numpy columns.

Same rules, same recompute contract, same output: for each meter's window the intervals
(energies rounded to 6 places, flags, tariffs None where `derive` gives None) and events
(same kinds, times and details, in the same order) that `derive` returns, bit for bit. Each
interval's shares are added in the order of the reference (pairs by time: `np.bincount`
adds its weights one after the other, in index order), so even the float sums are identical; the
property test in ``tests/ingest/test_bulk_intervals.py`` holds `derive` as the oracle.

Inputs are columns: readings sorted by (meter id, ts) with NaN for a missing register, and
one window per meter with its multiplier, rollover and maximum power (one row per window, so
that a multiplier valid for a window only can be passed the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from ingest.interval_grid import OFFSET_US, from_micros, step_micros
from ingest.intervals import (
    DECIMALS,
    DEFAULT_STEP,
    REGISTER_STEP,
    Derivation,
    EventKind,
    Interval,
    IntervalEvent,
)

_US_PER_HOUR = 3_600_000_000
_SCALE = 10.0**DECIMALS
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
TARIFFS = ("sharp", "peak", "flat", "valley")


@dataclass(frozen=True, slots=True)
class Windows:
    """One row per meter: its id (ascending, unique), window [start, end) on the grid in
    epoch microseconds, and what `meterhub.meter.MeterInfo` says about its registers."""

    meter_id: I64
    start: I64
    end: I64
    multiplier: F64
    rollover: F64
    max_power: F64


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Readings sorted by (meter_id, ts); ``ts`` in epoch microseconds; NaN where a register
    is missing; ``tariffs`` has one row per tariff register (sharp, peak, flat, valley)."""

    meter_id: I64
    ts: I64
    energy: F64
    tariffs: F64  # shape (4, n)


@dataclass(frozen=True, slots=True)
class BulkDerivation:
    """Intervals as columns (sorted by meter, start; NaN tariff = None) and events in the
    order `derive` gives them, meter after meter."""

    meter_id: I64
    start: I64
    energy: F64
    tariffs: F64  # shape (4, n)
    estimated: NDArray[np.bool_]
    complete: NDArray[np.bool_]
    events: list[IntervalEvent]

    def intervals(self) -> list[Interval]:
        """The intervals as `Interval` objects (slow: for tests and small results)."""
        out = []
        for i in range(len(self.meter_id)):
            s, p, f, v = (None if np.isnan(x) else float(x) for x in self.tariffs[:, i])
            out.append(
                Interval(
                    meter_id=int(self.meter_id[i]),
                    start=from_micros(int(self.start[i])),
                    energy=float(self.energy[i]),
                    sharp=s,
                    peak=p,
                    flat=f,
                    valley=v,
                    estimated=bool(self.estimated[i]),
                    complete=bool(self.complete[i]),
                )
            )
        return out

    def by_meter(self, meter_ids: list[int]) -> dict[int, Derivation]:
        """Per meter, what `derive` returns for its window (slow: for tests)."""
        intervals: dict[int, list[Interval]] = {m: [] for m in meter_ids}
        events: dict[int, list[IntervalEvent]] = {m: [] for m in meter_ids}
        for interval in self.intervals():
            intervals[interval.meter_id].append(interval)
        for event in self.events:
            events[event.meter_id].append(event)
        return {m: Derivation(tuple(intervals[m]), tuple(events[m])) for m in meter_ids}


def derive_bulk(
    windows: Windows,
    readings: ReadingColumns,
    *,
    step: timedelta = DEFAULT_STEP,
    max_gap: timedelta | None = None,
    headroom: float = 1.2,
) -> BulkDerivation:
    """`derive` for every window at once; ValueError for the inputs `derive` refuses, and
    for readings of a meter without a window or not sorted by (meter_id, ts)."""
    step_us = step_micros(step)
    gap_us = (step + timedelta(minutes=5) if max_gap is None else max_gap) // timedelta(
        microseconds=1
    )
    _check(windows, readings, step_us=step_us, gap_us=gap_us, headroom=headroom)
    first = (windows.start + OFFSET_US) // step_us  # grid index of each window's first
    last = (windows.end + OFFSET_US) // step_us - 1
    rate = windows.max_power * headroom

    # Points: energy-bearing readings, the first of each (meter, ts).
    idx = np.flatnonzero(~np.isnan(readings.energy))
    pm, pus = readings.meter_id[idx], readings.ts[idx]
    keep = np.ones(len(idx), dtype=bool)
    keep[1:] = (pm[1:] != pm[:-1]) | (pus[1:] != pus[:-1])
    idx = idx[keep]
    pm, pus, pe = pm[keep], pus[keep], readings.energy[idx]
    pt = readings.tariffs[:, idx]  # a point without any tariff is all NaN: unknown

    # Pairs of consecutive points of one meter that overlap the meter's window.
    i0 = np.flatnonzero(pm[1:] == pm[:-1])
    w = np.searchsorted(windows.meter_id, pm[i0])
    i1 = i0 + 1
    t0, t1 = pus[i0], pus[i1]
    inside = (t0 < windows.end[w]) & (t1 > windows.start[w])
    i0, i1, w, t0, t1 = i0[inside], i1[inside], w[inside], t0[inside], t1[inside]
    dur = t1 - t0
    cap = rate[w] * dur.astype(np.float64) / _US_PER_HOUR + REGISTER_STEP + 1e-9
    gap = dur > gap_us
    roll, mult = windows.rollover[w], windows.multiplier[w]
    e0, e1 = pe[i0], pe[i1]
    delta, valid, wrapped, kind = _deltas(e0, e1, roll, cap)
    events = _events(windows.meter_id[w], t0, t1, e0, e1, dur, gap, kind, wrapped, cap)

    # Valid pairs spread their deltas (times the multiplier) over the intervals they touch.
    v = np.flatnonzero(valid)
    energy = delta[v] * mult[v]
    tariff_deltas = np.full((4, len(v)), np.nan)
    for j in range(4):
        d, ok, _, _ = _deltas(pt[j, i0[v]], pt[j, i1[v]], roll[v], cap[v])
        tariff_deltas[j] = np.where(ok, d * mult[v], np.nan)
    wv, t0v, t1v = w[v], t0[v], t1[v]
    k0 = np.maximum((t0v + OFFSET_US) // step_us, first[wv])
    k1 = np.minimum((t1v - 1 + OFFSET_US) // step_us, last[wv])
    count = np.maximum(k1 - k0 + 1, 0)
    row = np.repeat(np.arange(len(v)), count)
    offsets = np.cumsum(count) - count
    k = k0[row] + (np.arange(len(row)) - offsets[row])
    start = k * step_us - OFFSET_US
    overlap = np.minimum(t1v[row], start + step_us) - np.maximum(t0v[row], start)
    share = overlap / dur[v][row]  # overlap == dur gives exactly 1.0, as in `derive`

    # Rows run by (meter, k) without decreasing: each interval is one run of rows.
    wr = wv[row]
    new = np.ones(len(row), dtype=bool)
    new[1:] = (wr[1:] != wr[:-1]) | (k[1:] != k[:-1])
    group = np.cumsum(new) - 1
    heads = np.flatnonzero(new)
    n = len(heads)
    acc = group_sums(group, energy[row] * share, n)
    tariff_acc = np.array([group_sums(group, tariff_deltas[j][row] * share, n) for j in range(4)])
    covered = group_sums(group, overlap, n)  # whole microseconds: exact in float64
    estimated = group_sums(group, gap[v][row], n)
    return BulkDerivation(
        meter_id=windows.meter_id[wr[heads]],
        start=start[heads],
        energy=np.rint(acc * _SCALE) / _SCALE,
        tariffs=np.rint(tariff_acc * _SCALE) / _SCALE,
        estimated=estimated > 0,
        complete=covered == step_us,
        events=events,
    )


def group_sums(group: I64, weights: NDArray[np.generic], groups: int) -> F64:
    """Per group, the sum of its weights, added one after the other in index order (as
    ``np.add.at``, and as the reference's loop), in float64."""
    return np.bincount(group, weights=weights, minlength=groups).astype(np.float64, copy=False)


def is_sorted(meter_id: I64, ts: I64) -> bool:
    """Whether readings are sorted by (meter_id, ts), as `derive_bulk` needs them."""
    return not (
        np.any(meter_id[1:] < meter_id[:-1])
        or np.any((meter_id[1:] == meter_id[:-1]) & (ts[1:] < ts[:-1]))
    )


def _check(
    windows: Windows, readings: ReadingColumns, *, step_us: int, gap_us: int, headroom: float
) -> None:
    ids = windows.meter_id
    if len(ids) > 1 and np.any(ids[1:] <= ids[:-1]):
        raise ValueError("windows must be one per meter, by ascending meter id")
    if np.any((windows.start + OFFSET_US) % step_us) or np.any((windows.end + OFFSET_US) % step_us):
        raise ValueError("window_start and window_end must lie on the interval grid")
    if np.any(windows.end < windows.start):
        raise ValueError("window_end is before window_start")
    if gap_us <= 0 or headroom <= 0 or np.any(windows.max_power <= 0):
        raise ValueError("max_gap, headroom, max_power and multiplier must be positive")
    if np.any(windows.multiplier <= 0):
        raise ValueError("max_gap, headroom, max_power and multiplier must be positive")
    m, ts = readings.meter_id, readings.ts
    pos = np.searchsorted(ids, m)
    if len(m) and (np.any(pos >= len(ids)) or np.any(ids[np.minimum(pos, len(ids) - 1)] != m)):
        raise ValueError("readings of a meter without a window")
    if not is_sorted(m, ts):
        raise ValueError("readings are not sorted by (meter_id, ts)")


def _deltas(
    e0: F64, e1: F64, rollover: F64, cap: F64
) -> tuple[F64, NDArray[np.bool_], F64, NDArray[np.int8]]:
    """Per pair: the usable delta, whether it is usable, the wrapped delta and the anomaly
    (`_KINDS` index, 0 for none) — `ingest.intervals._delta` over arrays (NaN: unusable)."""
    d = e1 - e0
    negative = d < 0
    wrapped = rollover - e0 + e1
    rolled = negative & (wrapped >= 0) & (wrapped <= cap)
    excess = ~negative & (d > cap)
    kind = np.zeros(len(d), dtype=np.int8)
    kind[rolled] = 1
    kind[negative & ~rolled] = 2
    kind[excess] = 3
    valid = (~negative & (d <= cap)) | rolled
    return np.where(negative, wrapped, d), valid, wrapped, kind


_KINDS: tuple[EventKind | None, ...] = (None, "rollover", "reset", "excess")


def _events(
    meter: I64,
    t0: I64,
    t1: I64,
    e0: F64,
    e1: F64,
    dur: I64,
    gap: NDArray[np.bool_],
    kind: NDArray[np.int8],
    wrapped: F64,
    cap: F64,
) -> list[IntervalEvent]:
    """Events pair by pair, a gap before the register's own anomaly (as `derive`)."""
    out: list[IntervalEvent] = []
    for i in np.flatnonzero(gap | (kind > 0)).tolist():
        m, start, end = int(meter[i]), from_micros(int(t0[i])), from_micros(int(t1[i]))
        if gap[i]:
            out.append(IntervalEvent(m, "gap", start, end, {"seconds": int(dur[i]) / 1e6}))
        name = _KINDS[int(kind[i])]
        if name is None:
            continue
        a, b = float(e0[i]), float(e1[i])
        detail = {"e0": a, "e1": b}
        if name == "rollover":
            detail.update(delta=float(wrapped[i]))
        elif name == "excess":
            detail.update(delta=b - a, max_delta=float(cap[i]))
        out.append(IntervalEvent(m, name, start, end, detail))
    return out

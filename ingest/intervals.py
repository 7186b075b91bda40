"""Interval consumption derived from one meter's cumulative registers; pure, no I/O.

Each pair of consecutive energy-bearing readings (r0, r1) gives a delta per register
(total, sharp, peak, flat, valley), all on the meter's secondary side:

* ``delta >= 0`` is consumption, unless it exceeds what the meter can deliver in the
  pair's time (``max_power * hours * headroom``): then an ``excess`` event is emitted and
  the pair contributes nothing;
* ``delta < 0`` is a ``rollover`` when the wrapped delta ``rollover - e0 + e1`` is within
  that cap (the wrapped delta is used), otherwise a ``reset`` (meter reset or replacement):
  the pair contributes nothing and e1 is the new baseline.

The total register decides a pair's fate and its events; a tariff register whose own delta
is implausible, or that is missing in r0 or r1, turns that tariff to None in every interval
the pair touches. A valid delta, times the meter's ``multiplier``, is spread over the grid
intervals overlapping [t0, t1) in proportion to time; with a ratio history
(``meter.ratios``, `meterhub.ratios`) each interval's share is multiplied by the
multiplier valid at the interval's start instead. A pair longer than ``max_gap`` also
emits a ``gap`` event, and its shares make their intervals ``estimated``. An interval is
``complete`` when valid pairs cover all of it. Outputs are rounded to 6 decimal places.

Recompute contract (late, resent and out-of-order readings)
-----------------------------------------------------------
An interval depends only on the pairs that overlap it. When a batch touches times
[a, b] of a meter, the database layer:

1. takes ``previous`` = ts of the last stored reading with ``energy IS NOT NULL`` before
   a, and ``following`` = the first one after b (None when there is none), and computes
   ``window_start, window_end = affected_window(batch_start=a, batch_end=b,
   previous=previous, following=following)``, i.e. ``floor_to_grid(previous or a)`` and
   ``ceil_to_grid(following or b)``;
2. fetches the meter's readings ordered by ts from the last energy-bearing reading at or
   before ``window_start`` through the first energy-bearing one at or after
   ``window_end``, both inclusive, unbounded on a side where there is none
   (`context_slice` does the same on a list). With readings one step apart that is the
   2nd-last reading before a through the 2nd after b; denser readings reach further;
3. calls ``derive(meter, fetched, window_start=window_start, window_end=window_end)`` and
   replaces exactly the stored intervals starting in [window_start, window_end) and the
   stored events whose [start, end) overlaps that window.

The result is then identical to deriving the meter's whole history (property-tested,
with and without a ratio history). An interval also depends on the multiplier valid at its
start: a ratio period recorded from t marks the meter's readings from t to its last one
before the next period dirty (`registry.meter_history`), and the worker passes each meter's
current history (`ingest.meter_ratios`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal, NamedTuple, get_args

from ingest.interval_grid import (
    DEFAULT_STEP,
    affected_window,
    ceil_to_grid,
    context_slice,
    floor_to_grid,
    from_micros,
    grid_index,
    grid_start,
    on_grid,
    step_micros,
    to_micros,
)
from meterhub.meter import MeterInfo
from meterhub.ratios import RatioHistory
from meterhub.reading import LOCAL_TZ, Reading

#: The resolution of a cumulative register (XXXXXX.XX): the least a delta can be.
REGISTER_STEP = 0.01

__all__ = [
    "DEFAULT_STEP",
    "DERIVED_EVENT_KINDS",
    "Derivation",
    "EventKind",
    "Interval",
    "IntervalEvent",
    "affected_window",
    "ceil_to_grid",
    "context_slice",
    "derive",
    "floor_to_grid",
]

EventKind = Literal["gap", "rollover", "reset", "excess"]
#: The event kinds `derive` finds (and a re-derivation replaces); other kinds in
#: `interval_events` (a swap's ``unknown_swap_energy``) are recorded by the registry.
DERIVED_EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

#: Decimal places of every output energy (1e-6 kWh = 1 mWh).
DECIMALS = 6
_SCALE = 10.0**DECIMALS

_US_PER_HOUR = 3_600_000_000
_Tariffs = Sequence[float | None]  # sharp, peak, flat, valley
_UNKNOWN: _Tariffs = (None, None, None, None)


@dataclass(slots=True, frozen=True)
class Interval:
    """Primary-side consumption in [start, start + step); a tariff is None when unknown."""

    meter_id: int
    start: datetime
    energy: float
    sharp: float | None
    peak: float | None
    flat: float | None
    valley: float | None
    estimated: bool
    complete: bool


@dataclass(slots=True, frozen=True)
class IntervalEvent:
    """An anomaly of the pair of readings at ``start`` and ``end``.

    ``detail`` holds secondary-side register values: ``e0``, ``e1`` and ``delta`` (rollover,
    excess), ``max_delta`` (excess), ``seconds`` (gap).
    """

    meter_id: int
    kind: EventKind
    start: datetime
    end: datetime
    detail: dict[str, float]


@dataclass(slots=True, frozen=True)
class Derivation:
    """What `derive` found in its window: intervals by start, events by pair."""

    intervals: tuple[Interval, ...]
    events: tuple[IntervalEvent, ...]


class _Point(NamedTuple):
    us: int
    ts: datetime
    energy: float
    tariffs: _Tariffs


class _Acc:
    __slots__ = ("covered", "energy", "estimated", "tariffs")

    def __init__(self) -> None:
        self.energy = 0.0
        self.covered = 0
        self.estimated = False
        self.tariffs: _Tariffs = (0.0, 0.0, 0.0, 0.0)


@dataclass(slots=True, frozen=True)
class _Config:
    meter_id: int
    step_us: int
    gap_us: int
    first: int  # grid index of the first interval in the window
    last: int  # grid index of the last one
    multiplier: float
    ratios: RatioHistory | None
    rollover: float
    rate: float  # max_power * headroom


def derive(
    meter: MeterInfo,
    readings: Sequence[Reading],
    *,
    window_start: datetime,
    window_end: datetime,
    step: timedelta = DEFAULT_STEP,
    max_gap: timedelta | None = None,
    headroom: float = 1.2,
) -> Derivation:
    """Intervals starting in [window_start, window_end) and events of pairs overlapping it.

    ``readings`` must be one meter's, sorted by ts (ValueError otherwise); readings without
    ``energy`` are skipped and, of several at one ts, the first is used. The window must be
    on the grid. ``max_gap`` defaults to ``step`` + 5 minutes.

    Example::

        t = datetime(2026, 3, 1, 8, 0, tzinfo=LOCAL_TZ)
        rs = [Reading(17, t, energy=100.0), Reading(17, t + DEFAULT_STEP, energy=100.5)]
        derive(meter, rs, window_start=t, window_end=t + DEFAULT_STEP).intervals
        # (Interval(17, t, energy=20.0, ..., estimated=False, complete=True),) with CT 40
    """
    cfg = _config(meter, window_start, window_end, step, max_gap, headroom)
    lo, hi = grid_start(cfg.first, cfg.step_us), grid_start(cfg.last + 1, cfg.step_us)
    acc: dict[int, _Acc] = {}
    events: list[IntervalEvent] = []
    for p0, p1 in pairwise(_points(meter.meter_id, readings)):
        if p0.us >= hi:
            break
        if p1.us > lo:
            _pair(cfg, p0, p1, acc, events)
    return Derivation(_intervals(cfg, acc), tuple(events))


def _config(
    meter: MeterInfo,
    window_start: datetime,
    window_end: datetime,
    step: timedelta,
    max_gap: timedelta | None,
    headroom: float,
) -> _Config:
    step_us = step_micros(step)
    gap_us = (step + timedelta(minutes=5) if max_gap is None else max_gap) // timedelta(
        microseconds=1
    )
    if not (on_grid(window_start, step) and on_grid(window_end, step)):
        raise ValueError("window_start and window_end must lie on the interval grid")
    if window_end < window_start:
        raise ValueError("window_end is before window_start")
    if gap_us <= 0 or headroom <= 0 or meter.max_power <= 0 or meter.multiplier <= 0:
        raise ValueError("max_gap, headroom, max_power and multiplier must be positive")
    return _Config(
        meter_id=meter.meter_id,
        step_us=step_us,
        gap_us=gap_us,
        first=grid_index(to_micros(window_start), step_us),
        last=grid_index(to_micros(window_end), step_us) - 1,
        multiplier=meter.multiplier,
        ratios=meter.ratios,
        rollover=meter.rollover,
        rate=meter.max_power * headroom,
    )


def _points(meter_id: int, readings: Sequence[Reading]) -> list[_Point]:
    """Energy-bearing readings as points, first one per ts; checks id and order."""
    points: list[_Point] = []
    last_us: int | None = None
    for r in readings:
        if r.meter_id != meter_id:
            raise ValueError(f"reading of meter {r.meter_id} passed for meter {meter_id}")
        us = to_micros(r.ts)
        if last_us is not None and us < last_us:
            raise ValueError(f"readings are not sorted by ts (at {r.ts.isoformat()})")
        last_us = us
        if r.energy is None or (points and points[-1].us == us):
            continue
        tariffs = (r.energy_sharp, r.energy_peak, r.energy_flat, r.energy_valley)
        points.append(_Point(us, r.ts, r.energy, _UNKNOWN if tariffs == _UNKNOWN else tariffs))
    return points


def _delta(
    e0: float, e1: float, rollover: float, cap: float
) -> tuple[float | None, EventKind | None]:
    """A register's usable delta (None if unusable) and the anomaly it shows, if any."""
    delta = e1 - e0
    if delta < 0:
        wrapped = rollover - e0 + e1
        return (wrapped, "rollover") if 0 <= wrapped <= cap else (None, "reset")
    return (delta, None) if delta <= cap else (None, "excess")


def _tariff_delta(e0: float | None, e1: float | None, rollover: float, cap: float) -> float | None:
    if e0 is None or e1 is None:
        return None
    return _delta(e0, e1, rollover, cap)[0]


def _multipliers(cfg: _Config, t0: int, t1: int) -> float | list[float]:
    """The multiplier of the window's intervals overlapping [t0, t1): one if it holds for all
    of them, else one per interval (the one valid at its start)."""
    if cfg.ratios is None:
        return cfg.multiplier
    step = cfg.step_us
    first = max(grid_index(t0, step), cfg.first)
    last = min(grid_index(t1 - 1, step), cfg.last)
    constant = cfg.ratios.constant_over(grid_start(first, step), grid_start(last, step))
    if constant is not None:
        return constant
    return [cfg.ratios.at(grid_start(k, step)) for k in range(first, last + 1)]


def _pair(
    cfg: _Config, p0: _Point, p1: _Point, acc: dict[int, _Acc], events: list[IntervalEvent]
) -> None:
    """Record the events of one pair and spread its valid deltas over the grid."""
    dur = p1.us - p0.us
    # One register step of slack: readings seconds apart may differ by one 0.01 count.
    cap = cfg.rate * dur / _US_PER_HOUR + REGISTER_STEP + 1e-9  # 1e-9: float noise
    gap = dur > cfg.gap_us
    if gap:
        _event(cfg, "gap", p0, p1, {"seconds": dur / 1e6}, events)
    delta, kind = _delta(p0.energy, p1.energy, cfg.rollover, cap)
    if kind is not None:
        detail = {"e0": p0.energy, "e1": p1.energy}
        if kind != "reset":
            detail.update(delta=p1.energy - p0.energy if delta is None else delta)
        if kind == "excess":
            detail.update(max_delta=cap)
        _event(cfg, kind, p0, p1, detail, events)
    if delta is None:
        return
    tariffs = _UNKNOWN
    if p0.tariffs is not _UNKNOWN and p1.tariffs is not _UNKNOWN:
        tariffs = [
            _tariff_delta(a, b, cfg.rollover, cap)
            for a, b in zip(p0.tariffs, p1.tariffs, strict=True)
        ]
    multipliers = _multipliers(cfg, p0.us, p1.us)
    _spread(cfg, p0.us, p1.us, delta, tariffs, multipliers, gap, acc)


def _event(
    cfg: _Config,
    kind: EventKind,
    p0: _Point,
    p1: _Point,
    detail: dict[str, float],
    events: list[IntervalEvent],
) -> None:
    start, end = p0.ts.astimezone(LOCAL_TZ), p1.ts.astimezone(LOCAL_TZ)
    events.append(IntervalEvent(cfg.meter_id, kind, start, end, detail))


def _spread(
    cfg: _Config,
    t0: int,
    t1: int,
    delta: float,
    tariffs: _Tariffs,
    multipliers: float | list[float],
    estimated: bool,
    acc: dict[int, _Acc],
) -> None:
    """Add the secondary ``delta`` and ``tariffs`` pro rata, times the interval's multiplier
    (`_multipliers`), to the window's intervals in [t0, t1)."""
    step = cfg.step_us
    dur = t1 - t0
    first = max(grid_index(t0, step), cfg.first)
    last = min(grid_index(t1 - 1, step), cfg.last)
    start = grid_start(first, step)
    for k in range(first, last + 1):
        overlap = min(t1, start + step) - max(t0, start)
        share = 1.0 if overlap == dur else overlap / dur  # x * 1.0 == x exactly
        start += step
        a = acc.get(k)
        if a is None:
            a = acc[k] = _Acc()
        a.covered += overlap
        a.estimated = a.estimated or estimated
        m = multipliers[k - first] if isinstance(multipliers, list) else multipliers
        a.energy += delta * m * share  # (delta * m) * share: as before ratio histories
        if a.tariffs is not _UNKNOWN:
            a.tariffs = _add(a.tariffs, tariffs, m, share)


def _add(totals: _Tariffs, tariffs: _Tariffs, multiplier: float, share: float) -> _Tariffs:
    if tariffs is _UNKNOWN:
        return _UNKNOWN
    return [
        None if t is None or d is None else t + d * multiplier * share
        for t, d in zip(totals, tariffs, strict=True)
    ]


def _intervals(cfg: _Config, acc: dict[int, _Acc]) -> tuple[Interval, ...]:
    out = []
    for k in sorted(acc):
        a = acc[k]
        t = a.tariffs
        s, p, f, v = t if t is _UNKNOWN else [None if x is None else _round(x) for x in t]
        start = from_micros(grid_start(k, cfg.step_us))
        complete = a.covered == cfg.step_us
        energy = _round(a.energy)
        out.append(Interval(cfg.meter_id, start, energy, s, p, f, v, a.estimated, complete))
    return tuple(out)


def _round(x: float) -> float:
    """``x`` to `DECIMALS` places (the float nearest to n / 10**DECIMALS); faster than round."""
    return round(x * _SCALE) / _SCALE

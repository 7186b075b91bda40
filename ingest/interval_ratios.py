"""A window cut where its intervals' multiplier changes, for derivations that take one
multiplier per window (bulk derivation); pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from ingest.interval_grid import (
    DEFAULT_STEP,
    from_micros,
    grid_index,
    grid_start,
    step_micros,
    to_micros,
)
from meterhub.meter import MeterInfo


class RatioPiece(NamedTuple):
    """A part of a window whose intervals all take one multiplier."""

    start: datetime
    end: datetime
    multiplier: float


def ratio_pieces(
    meter: MeterInfo,
    *,
    window_start: datetime,
    window_end: datetime,
    step: timedelta = DEFAULT_STEP,
) -> list[RatioPiece]:
    """The window cut where the multiplier of its intervals (valid at each one's start)
    changes. Deriving each piece with ``meter.ratios = None`` and its multiplier gives the
    intervals `derive` gives with the history (a derivation taking one multiplier per window
    can use this); a pair overlapping two pieces reports its events in both, equal.
    """
    if meter.ratios is None:
        return [RatioPiece(window_start, window_end, meter.multiplier)]
    step_us = step_micros(step)
    lo, hi = to_micros(window_start), to_micros(window_end)
    cuts = [grid_start(grid_index(s - 1, step_us) + 1, step_us) for s in meter.ratios.starts]
    bounds = [lo, *sorted({c for c in cuts if lo < c < hi}), hi]
    return [
        RatioPiece(from_micros(a), from_micros(b), meter.ratios.at(a))
        for a, b in pairwise(bounds)
        if a < b or lo == hi
    ]

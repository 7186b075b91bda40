"""A meter's CT x PT multiplier over time (the `meter_ratios` periods); pure, no I/O.

Derivation applies, to each 15-minute interval, the multiplier valid at the interval's start
(a ratio changed in the middle of an interval takes effect from the next one); before the
first period the first multiplier applies. Times are microseconds since the Unix epoch, as in
`ingest.interval_grid.to_micros`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(ts: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware ``ts``."""
    if ts.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got {ts.isoformat()}")
    return (ts - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class RatioHistory:
    """Multipliers by the time (µs) they hold from; ``starts`` ascending, not empty.

    Example::

        h = RatioHistory.of([(t0, 40.0), (t1, 80.0)])
        h.at(micros(t1) - 1), h.at(micros(t1))  # (40.0, 80.0)
    """

    starts: tuple[int, ...]
    multipliers: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.starts or len(self.starts) != len(self.multipliers):
            raise ValueError("a ratio history needs one multiplier per start, at least one")
        if any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)):
            raise ValueError("ratio periods must start in ascending order")
        if any(m <= 0 for m in self.multipliers):
            raise ValueError("multipliers must be positive")

    @classmethod
    def of(cls, periods: Sequence[tuple[datetime, float]]) -> RatioHistory:
        """From (valid_from, multiplier) pairs in any order."""
        ordered = sorted((micros(t), m) for t, m in periods)
        return cls(tuple(t for t, _ in ordered), tuple(m for _, m in ordered))

    def at(self, us: int) -> float:
        """The multiplier valid at ``us``."""
        return self.multipliers[max(bisect_right(self.starts, us) - 1, 0)]

    def at_many(self, us: NDArray[np.int64]) -> NDArray[np.float64]:
        """`at` for each of ``us`` (vectorised, for bulk derivation)."""
        index = np.searchsorted(np.asarray(self.starts, dtype=np.int64), us, side="right") - 1
        values = np.asarray(self.multipliers, dtype=np.float64)
        return values[np.clip(index, 0, None)]

    def constant_over(self, lo: int, hi: int) -> float | None:
        """The multiplier if one holds over all of [lo, hi] (µs), else None."""
        i = max(bisect_right(self.starts, lo) - 1, 0)
        if i + 1 < len(self.starts) and self.starts[i + 1] <= hi:
            return None
        return self.multipliers[i]

"""The interval grid (fixed-length intervals on Asia/Shanghai wall-clock time) and windows.

China has kept UTC+08:00 all year since 1991, so the grid is aligned to that fixed offset
(`LOCAL_TZ`'s standard offset): every grid point is a whole multiple of ``step`` after a
local midnight. Times are handled as integer microseconds since the Unix epoch so that
coverage arithmetic is exact.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from meterhub.reading import LOCAL_OFFSET_S, LOCAL_TZ, Reading

#: The default interval length.
DEFAULT_STEP = timedelta(minutes=15)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = timedelta(days=1) // _MICROSECOND
#: LOCAL_TZ's (Asia/Shanghai) offset from UTC in microseconds.
OFFSET_US = LOCAL_OFFSET_S * 1_000_000


def step_micros(step: timedelta) -> int:
    """Validate ``step`` (positive, divides a day) and return it in microseconds."""
    step_us = step // _MICROSECOND
    if step_us <= 0 or _DAY_US % step_us:
        raise ValueError(f"step must be positive and divide a day evenly, got {step}")
    return step_us


def to_micros(ts: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware datetime."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got {ts.isoformat()}")
    return (ts - _EPOCH) // _MICROSECOND


def from_micros(us: int) -> datetime:
    """The instant ``us`` microseconds after the epoch, as a `LOCAL_TZ` datetime."""
    seconds, micros = divmod(us, 1_000_000)
    ts = datetime.fromtimestamp(seconds, LOCAL_TZ)
    return ts.replace(microsecond=micros) if micros else ts


def grid_index(us: int, step_us: int) -> int:
    """Index of the grid interval containing instant ``us``."""
    return (us + OFFSET_US) // step_us


def grid_start(index: int, step_us: int) -> int:
    """Start (epoch microseconds) of grid interval ``index``."""
    return index * step_us - OFFSET_US


def floor_to_grid(ts: datetime, step: timedelta = DEFAULT_STEP) -> datetime:
    """The latest grid point at or before ``ts``, in `LOCAL_TZ`.

    Example: ``floor_to_grid(datetime(2026, 2, 28, 16, 7, tzinfo=UTC))`` is
    2026-03-01 00:00+08:00.
    """
    step_us = step_micros(step)
    return from_micros(grid_start(grid_index(to_micros(ts), step_us), step_us))


def ceil_to_grid(ts: datetime, step: timedelta = DEFAULT_STEP) -> datetime:
    """The earliest grid point at or after ``ts``, in `LOCAL_TZ`."""
    step_us = step_micros(step)
    index = -((-to_micros(ts) - OFFSET_US) // step_us)
    return from_micros(grid_start(index, step_us))


def on_grid(ts: datetime, step: timedelta = DEFAULT_STEP) -> bool:
    """Whether ``ts`` is a grid point."""
    return (to_micros(ts) + OFFSET_US) % step_micros(step) == 0


def affected_window(
    *,
    batch_start: datetime,
    batch_end: datetime,
    previous: datetime | None,
    following: datetime | None,
    step: timedelta = DEFAULT_STEP,
) -> tuple[datetime, datetime]:
    """The grid window whose intervals change when readings in [batch_start, batch_end] arrive.

    ``previous`` is the ts of the meter's last energy-bearing reading before ``batch_start``
    and ``following`` the first one after ``batch_end`` (None when there is none).

    Example: a late reading at 08:20 between stored ones at 08:10 and 09:05 gives
    ``(08:00, 09:15)``.
    """
    if batch_end < batch_start:
        raise ValueError("batch_end is before batch_start")
    if previous is not None and previous >= batch_start:
        raise ValueError("previous must be before batch_start")
    if following is not None and following <= batch_end:
        raise ValueError("following must be after batch_end")
    start = previous if previous is not None else batch_start
    end = following if following is not None else batch_end
    return floor_to_grid(start, step), ceil_to_grid(end, step)


def context_slice(
    readings: Sequence[Reading], *, window_start: datetime, window_end: datetime
) -> Sequence[Reading]:
    """The part of sorted ``readings`` that `derive` needs for a window.

    From the last energy-bearing reading at or before ``window_start`` through the first at
    or after ``window_end`` (step 2 of the recompute contract in `ingest.intervals`).
    """
    stamps = [r.ts for r in readings]
    energetic = [r.ts for r in readings if r.energy is not None]
    below = bisect_right(energetic, window_start)
    above = bisect_left(energetic, window_end)
    lo = bisect_left(stamps, energetic[below - 1]) if below else 0
    hi = bisect_right(stamps, energetic[above]) if above < len(energetic) else len(stamps)
    return readings[lo:hi]

"""Time-of-use tables: which tariff (sharp/peak/flat/valley) applies at each local time.

A table is data (``tou_zhejiang.toml`` is the bundled default, marked unconfirmed);
boundaries lie on the `GRID_MINUTES` grid, which is also the simulated load's knot
spacing, so a grid segment never straddles two tariffs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

from meterhub.reading import LOCAL_TZ, TARIFFS
from simulators.errors import NaiveTimeError, TariffTableError

#: Minutes between two grid points; tariff boundaries must be multiples of it.
GRID_MINUTES: Final = 5
#: Grid segments in a day.
SLOTS_PER_DAY: Final = 24 * 60 // GRID_MINUTES
_DEFAULT = "tou_zhejiang.toml"

#: A run of consecutive grid slots ``[first, stop)`` billed at tariff ``TARIFFS[index]``.
Run = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class TouTable:
    """A time-of-use table: per month, the day cut into runs of one tariff each.

    Example::

        table = load_tou()
        table.tariff_at(datetime(2026, 3, 2, 9, 30, tzinfo=LOCAL_TZ))  # "sharp"
    """

    name: str
    #: ``runs[month - 1]``: the runs covering that month's day, in time order.
    runs: tuple[tuple[Run, ...], ...]

    def runs_for(self, month: int) -> tuple[Run, ...]:
        return self.runs[month - 1]

    def index_at(self, ts: datetime) -> int:
        """Index into `TARIFFS` of the tariff in force at aware time ``ts`` (local time)."""
        if ts.tzinfo is None:
            raise NaiveTimeError(f"tariff lookup needs an aware time, got {ts!r}")
        local = ts.astimezone(LOCAL_TZ)
        slot = (local.hour * 60 + local.minute) // GRID_MINUTES
        for first, stop, index in self.runs[local.month - 1]:
            if first <= slot < stop:
                return index
        raise AssertionError("a validated table covers every slot")  # pragma: no cover

    def tariff_at(self, ts: datetime) -> str:
        """Name of the tariff in force at ``ts``: one of `TARIFFS`."""
        return TARIFFS[self.index_at(ts)]


def _minute(text: object, *, where: str) -> int:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise TariffTableError(f"{where}: a time is 'HH:MM', got {text!r}")
    try:
        hours, minutes = int(text[:2]), int(text[3:])
    except ValueError:
        raise TariffTableError(f"{where}: a time is 'HH:MM', got {text!r}") from None
    value = hours * 60 + minutes
    if minutes >= 60 or not 0 <= value <= 1440:
        raise TariffTableError(f"{where}: {text!r} is not a time between 00:00 and 24:00")
    if value % GRID_MINUTES:
        raise TariffTableError(f"{where}: {text!r} is not on the {GRID_MINUTES}-minute grid")
    return value


def _schedule_runs(periods: object, *, where: str) -> tuple[Run, ...]:
    if not isinstance(periods, list) or not periods:
        raise TariffTableError(f"{where}: `periods` must be a non-empty list")
    runs: list[Run] = []
    expected = 0
    for number, period in enumerate(periods, 1):
        at = f"{where}, period {number}"
        if not isinstance(period, dict) or set(period) != {"start", "end", "tariff"}:
            raise TariffTableError(f"{at}: needs exactly `start`, `end` and `tariff`")
        start, end = _minute(period["start"], where=at), _minute(period["end"], where=at)
        if start != expected or end <= start:
            raise TariffTableError(f"{at}: periods must run on from 00:00 without gaps")
        if period["tariff"] not in TARIFFS:
            raise TariffTableError(f"{at}: tariff {period['tariff']!r} not in {TARIFFS}")
        index = TARIFFS.index(period["tariff"])
        first, stop = start // GRID_MINUTES, end // GRID_MINUTES
        if runs and runs[-1][2] == index:  # merge neighbours billed alike
            first = runs.pop()[0]
        runs.append((first, stop, index))
        expected = end
    if expected != 1440:
        raise TariffTableError(f"{where}: periods end at {expected // 60:02d}:00, not 24:00")
    return tuple(runs)


def parse_tou(data: Mapping[str, Any], *, source: str = "<tou>") -> TouTable:
    """Build a table from parsed TOML (see ``tou_zhejiang.toml`` for the schema)."""
    schedules = data.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise TariffTableError(f"{source}: needs a non-empty [[schedules]] list")
    by_month: dict[int, tuple[Run, ...]] = {}
    for number, schedule in enumerate(schedules, 1):
        where = f"{source}, schedule {number}"
        months = schedule.get("months") if isinstance(schedule, dict) else None
        if not isinstance(months, list) or not months:
            raise TariffTableError(f"{where}: `months` must be a non-empty list")
        runs = _schedule_runs(schedule.get("periods"), where=where)
        for month in months:
            if not isinstance(month, int) or not 1 <= month <= 12 or month in by_month:
                raise TariffTableError(f"{where}: month {month!r} invalid or listed twice")
            by_month[month] = runs
    missing = sorted(set(range(1, 13)) - set(by_month))
    if missing:
        raise TariffTableError(f"{source}: months {missing} have no schedule")
    name = data.get("name", source)
    return TouTable(name=str(name), runs=tuple(by_month[m] for m in range(1, 13)))


def load_tou(path: str | os.PathLike[str] | None = None) -> TouTable:
    """Load a table from a TOML file; ``None`` loads the bundled Zhejiang table."""
    if path is None:
        text = resources.files("simulators").joinpath(_DEFAULT).read_text(encoding="utf-8")
        source = _DEFAULT
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TariffTableError(f"cannot read TOU table {os.fspath(path)!r}: {exc}") from exc
        source = os.fspath(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffTableError(f"{source}: not valid TOML: {exc}") from exc
    return parse_tou(data, source=source)

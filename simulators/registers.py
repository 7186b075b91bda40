"""A meter's cumulative registers: the exact integral of its load, split by tariff.

Per-tariff energy from the first installation's local midnight is kept per day (each day
computed once); within a day the running integral of the piecewise-linear load is exact.
Registers are secondary-side (primary / CT x PT), truncated to the register step, and
wrap at ``rollover``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray

from meterhub.reading import LOCAL_OFFSET_S
from simulators.errors import NotInstalledError
from simulators.faults import Rollover
from simulators.profile import KNOT_SECONDS, DayLoad, LoadProfile, split_time
from simulators.tariff import SLOTS_PER_DAY, Run, TouTable

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: How an initial register value is spread over sharp/peak/flat/valley.
INITIAL_SHARES: Final = (0.10, 0.35, 0.25, 0.30)
_ONE_RUN: Final[tuple[Run, ...]] = ((0, SLOTS_PER_DAY, 0),)


@dataclass(frozen=True, slots=True)
class Installation:
    """One physical meter at the metering point, i.e. one registry row: a `Replacement`
    removes the old meter and installs the next one at the same instant."""

    code: str
    installed_at: datetime
    removed_at: datetime | None
    initial_energy: float
    replaces: str | None = None


@dataclass(slots=True)
class _Cache:
    origin: int | None = None  # local day number of the first installation
    units: float | None = None  # register steps per kWh (m3)
    starts: list[list[float]] = field(default_factory=list)  # per tariff, days from origin
    bases: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Registers:
    """The register bank of one metering point across its installations.

    ``tou`` is ``None`` for water and gas (one register). Example::

        regs = Registers(load=load, tou=load_tou(), installations=(first,),
                         multiplier=2000.0, rollover=1e6, resolution=0.01)
        regs.read(ts)  # [total, sharp, peak, flat, valley]
    """

    load: LoadProfile
    tou: TouTable | None
    installations: tuple[Installation, ...]
    multiplier: float
    rollover: float
    resolution: float
    rollovers: tuple[Rollover, ...] = ()
    _cache: _Cache = field(default_factory=_Cache, compare=False, repr=False)

    def installation(self, ts: datetime) -> int:
        """Index of the installation in place at ``ts``; `NotInstalledError` before the first."""
        installs = self.installations
        if ts < installs[0].installed_at:
            first = installs[0]
            raise NotInstalledError(f"meter {first.code} was installed at {first.installed_at}")
        index = 0
        while index + 1 < len(installs) and ts >= installs[index + 1].installed_at:
            index += 1
        return index

    def read(self, ts: datetime) -> list[float]:
        """[total, *per tariff] register values at ``ts`` (one value for water and gas)."""
        return self.quantized(self.exact(ts))

    def exact(self, ts: datetime) -> list[float]:
        """Per-tariff secondary registers at ``ts`` before truncation and wrapping."""
        day, seconds = split_time(ts)
        return self.raw(self.installation(ts), day, seconds, self.load.day(day))

    def read_day(self, day: int, seconds: Sequence[float]) -> list[tuple[int, list[float]]]:
        """`read` at each of ``seconds`` (rising) after local day number ``day``'s midnight,
        as (installation index, values): the same numbers from the same operations in the
        same order, array by array (for exports of many ticks). Ticks before the first
        installation are left out."""
        midnight = day * 86400 - LOCAL_OFFSET_S
        starts = [i.installed_at.timestamp() for i in self.installations]
        at = np.asarray(seconds, dtype=np.float64)
        index = np.searchsorted(np.asarray(starts), midnight + at, side="right") - 1
        keep = index >= 0
        if not keep.any():
            return []
        at, index = at[keep], index[keep]
        now = self._cumulative_day(day, at)
        bases = [self._base(i) for i in range(len(self.installations))]
        base = np.asarray([b for b, _ in bases])[index]
        initial = np.asarray([i for _, i in bases])[index]
        raw = initial + (now - base) / self.multiplier
        total = raw[:, 0]
        for column in range(1, raw.shape[1]):
            total = total + raw[:, column]
        values = np.column_stack([total, raw]) if self.tou is not None else total[:, None]
        units = 1.0 / self.resolution
        out = np.floor(values % self.rollover * units + 1e-6) / units
        out[out >= self.rollover] = 0.0
        return list(zip(index.tolist(), out.tolist(), strict=True))

    def _cumulative_day(self, day: int, at: NDArray[np.float64]) -> NDArray[np.float64]:
        """`_cumulative` at each of ``at`` (seconds after midnight, rising), one row each:
        the day's start, plus each whole run in order, plus the partial one."""
        dl, runs = self.load.day(day), self._runs(day)
        cum, knots = np.asarray(dl.cum), np.asarray(dl.knots)
        k = np.minimum((at // KNOT_SECONDS).astype(np.int64), SLOTS_PER_DAY - 1)
        tau = at - k * KNOT_SECONDS
        p0, p1 = knots[k], knots[k + 1]
        energy = cum[k] + (p0 * tau + (p1 - p0) * tau * tau / (2 * KNOT_SECONDS)) / 3600
        done = [list(self._start(day))]
        for first, stop, tariff in runs:
            step = list(done[-1])
            step[tariff] += dl.cum[stop] - dl.cum[first]
            done.append(step)
        stops = np.asarray([stop for _, stop, _ in runs])
        ended = np.searchsorted(stops, k, side="right")  # whole runs before knot k
        now = np.asarray(done)[ended]
        part = np.minimum(ended, len(runs) - 1)
        firsts = np.asarray([first for first, _, _ in runs])[part]
        tariffs = np.asarray([tariff for _, _, tariff in runs])[part]
        rows = np.arange(len(at))
        partial = ended < len(runs)
        now[rows[partial], tariffs[partial]] += (energy - cum[firsts])[partial]
        return now

    def quantized(self, raw: list[float]) -> list[float]:
        """[total, *raw] truncated to the register step and wrapped; total is sum(raw)."""
        rollover, units = self.rollover, self._cache.units
        if units is None:  # register steps per unit: 100 for 0.01
            units = self._cache.units = 1.0 / self.resolution
        values = (sum(raw), *raw) if self.tou is not None else (sum(raw),)
        out = [math.floor(v % rollover * units + 1e-6) / units for v in values]
        return [0.0 if v >= rollover else v for v in out]

    def raw(self, index: int, day: int, seconds: float, dl: DayLoad) -> list[float]:
        """Unrounded, unwrapped secondary register per tariff of installation ``index``."""
        base, initial = self._base(index)
        now = self._cumulative(day, seconds, dl)
        m = self.multiplier
        return [i + (c - b) / m for i, c, b in zip(initial, now, base, strict=True)]

    def _runs(self, day: int) -> tuple[Run, ...]:
        if self.tou is None:
            return _ONE_RUN
        return self.tou.runs[date.fromordinal(day + _EPOCH_ORDINAL).month - 1]

    def _start(self, day: int) -> list[float]:
        """Primary energy per tariff from the origin's midnight to ``day``'s."""
        cache = self._cache
        starts, origin = cache.starts, cache.origin
        if origin is None:
            origin = cache.origin = split_time(self.installations[0].installed_at)[0]
            starts.append([0.0] * len(INITIAL_SHARES))
        while len(starts) <= day - origin:
            d = origin + len(starts) - 1
            cum = self.load.day(d).cum
            totals = list(starts[-1])
            for first, stop, tariff in self._runs(d):
                totals[tariff] += cum[stop] - cum[first]
            starts.append(totals)
        return starts[day - origin]

    def _cumulative(self, day: int, seconds: float, dl: DayLoad) -> list[float]:
        out = list(self._start(day))
        k, energy = dl.energy(seconds)
        cum = dl.cum
        for first, stop, tariff in self._runs(day):
            if stop <= k:
                out[tariff] += cum[stop] - cum[first]
            else:
                out[tariff] += energy - cum[first]
                break
        return out

    def _at(self, ts: datetime) -> list[float]:
        day, seconds = split_time(ts)
        return self._cumulative(day, seconds, self.load.day(day))

    def _base(self, index: int) -> tuple[list[float], list[float]]:
        """(primary energy at installation, initial secondary registers), per tariff."""
        found = self._cache.bases.get(index)
        if found is not None:
            return found
        install = self.installations[index]
        base = self._at(install.installed_at)
        initial = install.initial_energy
        for rollover in self.rollovers:  # read rollover - margin at `at`
            if self.installation(rollover.at) == index:
                grown = (sum(self._at(rollover.at)) - sum(base)) / self.multiplier
                initial = (self.rollover - rollover.margin - grown) % self.rollover
        found = (base, [initial * share for share in INITIAL_SHARES])
        self._cache.bases[index] = found
        return found

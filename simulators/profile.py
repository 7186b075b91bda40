"""Load profiles: the active power (or flow) of a simulated meter as a pure function of time.

Power is piecewise linear between knots every `GRID_MINUTES` (local time), so its integral
is exact and cheap: `DayLoad` keeps a day's knots and their running integral. A knot's
value is fixed by (meter key, local day, knot): shift pattern x weekend rule x Spring
Festival shutdown x stoppages (and night load, surges), seasonal drift and yearly growth,
times smooth value noise drawn from a `random.Random` seeded per (key, day) - never from
global random state.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import accumulate, pairwise
from typing import Final, TypeVar

from meterhub.reading import LOCAL_OFFSET_S, LOCAL_TZ
from simulators.errors import NaiveTimeError
from simulators.faults import FaultSet, NightLoad, Stoppage, Surge, WindowFault
from simulators.industry import IndustryProfile, Shift, Weekend
from simulators.tariff import GRID_MINUTES, SLOTS_PER_DAY

KNOT_SECONDS: Final = GRID_MINUTES * 60
_HALF_KNOT_HOURS: Final = KNOT_SECONDS / 7200  # trapezoid: (p0 + p1) / 2 x knot hours
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_GROWTH_BASE: Final = date(2024, 1, 1).toordinal() - _EPOCH_ORDINAL
_MIX: Final = 0x9E3779B97F4A7C15
_MASK: Final = (1 << 64) - 1
_HOURLY_NOISE: Final = 0.04  # amplitude of the hourly value noise
_KNOTS_PER_HOUR: Final = 60 // GRID_MINUTES
_HOURLY_WEIGHTS: Final = tuple(
    (k // _KNOTS_PER_HOUR, 1 - (k % _KNOTS_PER_HOUR) / _KNOTS_PER_HOUR,
     (k % _KNOTS_PER_HOUR) / _KNOTS_PER_HOUR)
    for k in range(SLOTS_PER_DAY)
)  # fmt: skip

#: Chinese New Year's Day (正月初一), 2023-2031.
SPRING_FESTIVAL: Final = {
    d.year: d
    for d in (
        date(2023, 1, 22),
        date(2024, 2, 10),
        date(2025, 1, 29),
        date(2026, 2, 17),
        date(2027, 2, 6),
        date(2028, 1, 26),
        date(2029, 2, 13),
        date(2030, 2, 3),
        date(2031, 1, 23),
    )
}
_NIGHT_START: Final = 22 * 60 // GRID_MINUTES  # `NightLoad` knots: 22:00 to 06:00
_NIGHT_END: Final = 6 * 60 // GRID_MINUTES
#: Days before and after New Year's Day that factories stand still (inclusive).
FESTIVAL_WINDOW: Final = (-7, 10)


class DayKind(enum.Enum):
    WORK = "work"
    HALF = "half"
    OFF = "off"
    FESTIVAL = "festival"


# Working-day activity as (minute of day, level) breakpoints; None stands for the idle level.
_PATTERNS: Final[dict[tuple[Shift, DayKind], tuple[tuple[int, float | None], ...]]] = {
    (Shift.ONE, DayKind.WORK): (
        (0, None), (450, None), (480, 1), (710, 1), (725, 0.35), (775, 0.35), (790, 1),
        (1020, 1), (1050, None), (1440, None),
    ),
    (Shift.ONE, DayKind.HALF): (
        (0, None), (450, None), (480, 1), (710, 1), (740, None), (1440, None),
    ),
    (Shift.TWO, DayKind.WORK): (
        (0, None), (450, None), (480, 1), (715, 1), (725, 0.6), (755, 0.6), (765, 1), (1050, 1),
        (1060, 0.7), (1080, 0.7), (1090, 1), (1425, 1), (1440, None),
    ),
    (Shift.THREE, DayKind.WORK): (
        (0, 0.85), (10, 0.95), (475, 0.95), (480, 0.85), (490, 0.95), (955, 0.95), (960, 0.85),
        (970, 0.95), (1440, 0.85),
    ),
    (Shift.THREE, DayKind.HALF): ((0, 0.6), (1440, 0.6)),
}  # fmt: skip
_PATTERNS[Shift.TWO, DayKind.HALF] = _PATTERNS[Shift.ONE, DayKind.WORK]


@lru_cache(maxsize=256)
def activity_shape(
    shift: Shift, kind: DayKind, *, idle: float, festival: float
) -> tuple[float, ...]:
    """Activity (0 idle .. 1 full production) at each knot of a day of ``kind``."""
    if kind is DayKind.OFF or kind is DayKind.FESTIVAL:
        return (idle if kind is DayKind.OFF else festival,) * SLOTS_PER_DAY
    points = [(m, idle if v is None else v) for m, v in _PATTERNS[shift, kind]]
    shape = []
    for k in range(SLOTS_PER_DAY):
        minute = k * GRID_MINUTES
        i = next(i for i in range(1, len(points)) if points[i][0] >= minute)
        (m0, v0), (m1, v1) = points[i - 1], points[i]
        shape.append(v0 + (v1 - v0) * (minute - m0) / (m1 - m0))
    return tuple(shape)


@lru_cache(maxsize=256)
def _activity_total(shift: Shift, kind: DayKind, *, idle: float, festival: float) -> float:
    return math.fsum(activity_shape(shift, kind, idle=idle, festival=festival))


def split_time(ts: datetime) -> tuple[int, float]:
    """(local day number since 1970-01-01, seconds since local midnight) of aware ``ts``."""
    if ts.tzinfo is None:
        raise NaiveTimeError(f"simulated meters need aware times, got {ts!r}")
    seconds = ts.timestamp() + LOCAL_OFFSET_S
    day = int(seconds // 86400)
    return day, seconds - day * 86400


def day_start(day: int) -> datetime:
    """Local midnight starting day number ``day``."""
    return datetime.fromtimestamp(day * 86400 - LOCAL_OFFSET_S, tz=LOCAL_TZ)


def day_kind(day: int, weekend: Weekend) -> DayKind:
    """How a firm keeping ``weekend`` works on local day number ``day``."""
    when = date.fromordinal(day + _EPOCH_ORDINAL)
    festival = SPRING_FESTIVAL.get(when.year)  # always in Jan/Feb: the window stays in the year
    if festival is not None and FESTIVAL_WINDOW[0] <= (when - festival).days <= FESTIVAL_WINDOW[1]:
        return DayKind.FESTIVAL
    weekday = when.weekday()
    if weekday == 6 and weekend is not Weekend.SEVEN_DAYS:
        return DayKind.OFF
    if weekday == 5 and weekend is Weekend.SATURDAY_HALF:
        return DayKind.HALF
    return DayKind.WORK


def season_factor(day: int, summer_boost: float) -> float:
    """Cooling peak in late July, a small heating bump in January; 1.0 in spring and autumn."""
    doy = date.fromordinal(day + _EPOCH_ORDINAL).timetuple().tm_yday
    winter = math.exp(-(((doy - 10) / 25) ** 2)) + math.exp(-(((doy - 375) / 25) ** 2))
    return 1.0 + summer_boost * math.exp(-(((doy - 205) / 38) ** 2)) + 0.04 * winter


@dataclass(frozen=True, slots=True)
class DayLoad:
    """One local day: power at each knot (the last is next midnight's) and energy up to it."""

    knots: list[float]  # kW (m3/h), SLOTS_PER_DAY + 1 values
    cum: list[float]  # kWh (m3) from midnight, SLOTS_PER_DAY + 1 values

    def power(self, seconds: float) -> float:
        k = min(int(seconds // KNOT_SECONDS), SLOTS_PER_DAY - 1)
        p0, p1 = self.knots[k], self.knots[k + 1]
        return p0 + (p1 - p0) * (seconds - k * KNOT_SECONDS) / KNOT_SECONDS

    def energy(self, seconds: float) -> tuple[int, float]:
        """(knot index, energy from midnight) ``seconds`` after midnight; exact integral."""
        k = min(int(seconds // KNOT_SECONDS), SLOTS_PER_DAY - 1)
        p0, p1 = self.knots[k], self.knots[k + 1]
        tau = seconds - k * KNOT_SECONDS
        return k, self.cum[k] + (p0 * tau + (p1 - p0) * tau * tau / (2 * KNOT_SECONDS)) / 3600


@dataclass(slots=True)
class _Cache:
    knots: dict[int, list[float]] = field(default_factory=dict)
    days: dict[int, DayLoad] = field(default_factory=dict)


V = TypeVar("V")


def _remember(store: dict[int, V], day: int, value: V, *, keep: int = 4) -> V:
    if len(store) >= keep:
        del store[next(iter(store))]
    store[day] = value
    return value


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """A meter's load: primary-side power in kW (m3/h for water and gas), never above ``rated``.

    ``load_factor`` is the full-production level and ``standby`` the idle level, both as
    fractions of ``rated``. Not thread-safe (it caches a few days of knots).

    Example::

        load = LoadProfile(key=derive_key(42, "meter:1"), rated=500.0, load_factor=0.6,
                           standby=0.07, industry=industry_profile("C2438"))
        load.power_kw(datetime(2026, 3, 4, 10, 0, tzinfo=LOCAL_TZ))  # about 300 kW
    """

    key: int
    rated: float
    load_factor: float
    standby: float
    industry: IndustryProfile
    faults: FaultSet = field(default_factory=FaultSet)
    noise: float = 0.05  # amplitude of the 5-minute value noise
    day_variation: float = 0.05  # amplitude of the day-to-day production level
    _cache: _Cache = field(default_factory=_Cache, compare=False, repr=False)

    def power_kw(self, ts: datetime) -> float:
        """Instantaneous primary-side active power (kW, or m3/h) at aware time ``ts``."""
        day, seconds = split_time(ts)
        return self.day(day).power(seconds)

    def day(self, day: int) -> DayLoad:
        """The knots and running integral of local day number ``day``."""
        found = self._cache.days.get(day)
        if found is not None:
            return found
        knots = [*self.knots(day), self.knots(day + 1)[0]]
        cum = list(
            accumulate(((a + b) * _HALF_KNOT_HOURS for a, b in pairwise(knots)), initial=0.0)
        )
        return _remember(self._cache.days, day, DayLoad(knots, cum))

    def knots(self, day: int) -> list[float]:
        """Power at the day's `SLOTS_PER_DAY` knots, from local midnight on."""
        found = self._cache.knots.get(day)
        if found is not None:
            return found
        industry = self.industry
        kind = day_kind(day, industry.weekend)
        shape = activity_shape(
            industry.shift, kind, idle=industry.idle, festival=industry.festival_level
        )
        shape = self._stopped(day, shape)
        if kind is DayKind.WORK or kind is DayKind.HALF:
            shape = self._night_load(day, shape)
        rnd = random.Random(self.key ^ (day * _MIX & _MASK)).random
        hourly = [rnd() for _ in range(24)]
        hourly.append(random.Random(self.key ^ ((day + 1) * _MIX & _MASK)).random())
        level = 1.0 + self.day_variation * (2.0 * rnd() - 1.0)
        years = (day - _GROWTH_BASE) / 365.25
        scale = self.rated * season_factor(day, industry.summer_boost)
        scale *= (1.0 + industry.growth) ** max(-3.0, min(10.0, years))
        base, span = scale * self.standby, scale * (self.load_factor - self.standby) * level
        fine, slow, flat = 2.0 * self.noise, 2.0 * _HOURLY_NOISE, 1.0 - self.noise - _HOURLY_NOISE
        hours = [hourly[h] * w0 + hourly[h + 1] * w1 for h, w0, w1 in _HOURLY_WEIGHTS]
        values = [
            (base + span * a) * (flat + fine * rnd() + slow * x)
            for a, x in zip(shape, hours, strict=True)
        ]
        if surge := self._surge(day):
            values = [v * surge for v in values]
        if max(values) > self.rated:  # never above the rating
            values = [min(self.rated, v) for v in values]
        return _remember(self._cache.knots, day, values)

    def day_energy(self, day: int) -> float:
        """Local day ``day``'s energy (kWh, m3) without the 5-minute and hourly noise, whose
        mean is 1: within about 1 % of ``day(day).cum[-1]`` and far cheaper, for months of
        history (the day-to-day level, shapes, faults, season and growth are the same)."""
        industry = self.industry
        kind = day_kind(day, industry.weekend)
        usual = activity_shape(
            industry.shift, kind, idle=industry.idle, festival=industry.festival_level
        )
        shape = self._stopped(day, usual)
        if kind is DayKind.WORK or kind is DayKind.HALF:
            shape = self._night_load(day, shape)
        if shape is usual:
            activity: float = _activity_total(
                industry.shift, kind, idle=industry.idle, festival=industry.festival_level
            )
        else:
            activity = sum(shape)
        rnd = random.Random(self.key ^ (day * _MIX & _MASK)).random
        for _ in range(24):  # the hourly draws `knots` makes first
            rnd()
        level = 1.0 + self.day_variation * (2.0 * rnd() - 1.0)
        years = (day - _GROWTH_BASE) / 365.25
        scale = self.rated * season_factor(day, industry.summer_boost)
        scale *= (1.0 + industry.growth) ** max(-3.0, min(10.0, years))
        base, span = scale * self.standby, scale * (self.load_factor - self.standby) * level
        kwh = (base * SLOTS_PER_DAY + span * activity) * KNOT_SECONDS / 3600
        return float(min(kwh * self._surge(day), self.rated * 24))

    def _knot_range(self, fault: WindowFault, day: int) -> range:
        """The knots of local day ``day`` that ``fault`` covers (empty when its daily draw
        fails)."""
        start = day_start(day)
        first = start.timestamp()
        lo, hi = 0, SLOTS_PER_DAY
        if fault.start is not None:
            lo = max(lo, math.ceil((fault.start.timestamp() - first) / KNOT_SECONDS))
        if fault.end is not None:
            hi = min(hi, math.ceil((fault.end.timestamp() - first) / KNOT_SECONDS))
        if lo >= hi or self.faults.draw(fault, start) >= fault.probability:
            return range(0)
        return range(lo, hi)

    def _stopped(self, day: int, shape: tuple[float, ...]) -> tuple[float, ...]:
        stoppages = self.faults.of(Stoppage)
        if not stoppages:
            return shape
        out = list(shape)
        for fault in stoppages:
            for k in self._knot_range(fault, day):
                out[k] = 0.0
        return tuple(out)

    def _night_load(self, day: int, shape: tuple[float, ...]) -> tuple[float, ...]:
        nights = self.faults.of(NightLoad)
        if not nights:
            return shape
        out = list(shape)
        for fault in nights:
            for k in self._knot_range(fault, day):
                if k < _NIGHT_END or k >= _NIGHT_START:
                    out[k] = max(out[k], fault.level)
        return tuple(out)

    def _surge(self, day: int) -> float:
        """The load factor of a `Surge` covering the day's noon (1.0 for none)."""
        noon = SLOTS_PER_DAY // 2
        factor = 1.0
        for fault in self.faults.of(Surge):
            if noon in self._knot_range(fault, day):
                factor *= fault.factor
        return factor

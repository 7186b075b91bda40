"""A simulated meter: registers that integrate its load exactly, plus instantaneous values.

Every value is a pure function of (city seed, meter, time); a few days of knots and the
per-day totals are cached, so asking any protocol path at any moment is cheap and consistent.
Not thread-safe.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from meterhub.reading import LOCAL_OFFSET_S, TARIFFS, VALUE_FIELDS, Reading, Utility
from simulators.config import CityConfig, FirmSpec, MeterSpec
from simulators.errors import NaiveTimeError
from simulators.faults import ClockDrift, FaultSet, GarbageValues, Replacement, Rollover, derive_key
from simulators.industry import industry_profile
from simulators.profile import LoadProfile
from simulators.registers import Installation, Registers
from simulators.tariff import TouTable

_GARBAGE: Final = (math.nan, 1e12, -1.0, 4294967295.0)  # -1.0: a negative of the true value


def _round(x: float, per_unit: float) -> float:
    """``x`` to the nearest 1/per_unit, like `round` but cheaper (ties may differ)."""
    return math.floor(x * per_unit + 0.5) / per_unit


def _jitter(x: float) -> float:
    """A deterministic pseudo-random number in [0, 1) (for values that are not integrated)."""
    y = math.sin(x) * 43758.5453
    return y - math.floor(y)


@dataclass(frozen=True, slots=True)
class _Phases:
    """Per-meter constants of the electrical values: phase voltages, PF, load shares."""

    volts: tuple[float, float, float]  # operating voltage per phase at no load
    shares: tuple[float, float, float]  # share of the power per phase, summing to 1
    pf: float  # power factor at 40 % load
    seed: float

    @classmethod
    def of(cls, spec: MeterSpec, key: int) -> _Phases:
        nominal = 57.7 if spec.pt > 1 else 220.0  # behind a 10 kV/100 V PT, or low voltage
        volts = [nominal * (1.02 + 0.03 * _jitter(key % 9973 + p)) for p in range(3)]
        raw = [1 + 0.1 * _jitter(key % 4001 + 11 * p) for p in range(3)]
        shares = [s / sum(raw) for s in raw]
        pf = 0.90 + 0.06 * _jitter(key % 6007)
        return cls(
            (volts[0], volts[1], volts[2]), (shares[0], shares[1], shares[2]), pf, key % 7919
        )


@dataclass(frozen=True, slots=True)
class SimulatedMeter:
    """One simulated metering point. Build with `SimulatedMeter.build` or `build_meters`.

    Example::

        meter = build_meters(city)[0]
        meter.energy_at(ts)   # {"total": 1234.56, "sharp": 120.5, ..., "valley": 380.1}
        meter.snapshot(ts)    # a Reading stamped with the meter's clock
    """

    spec: MeterSpec
    firm: FirmSpec
    load: LoadProfile
    faults: FaultSet
    registers: Registers
    _phases: _Phases

    @classmethod
    def build(cls, spec: MeterSpec, *, firm: FirmSpec, seed: int, tou: TouTable) -> SimulatedMeter:
        """The meter ``spec`` of ``firm`` in a city seeded with ``seed``."""
        key = derive_key(seed, f"meter:{spec.id}")
        faults = FaultSet(spec.faults, key=key)
        industry = industry_profile(firm.industry, shift=firm.shift, weekend=firm.weekend)
        load = LoadProfile(
            key=key,
            rated=spec.rated_power,
            load_factor=spec.load_factor,
            standby=spec.standby,
            industry=industry,
            faults=faults,
        )
        swaps = sorted(faults.of(Replacement), key=lambda r: r.at)
        installs = [Installation(spec.code, spec.installed_at, None, spec.initial_energy)]
        for code, swap in zip(spec.replacement_codes(), swaps, strict=True):
            old = installs[-1] = dataclasses.replace(installs[-1], removed_at=swap.at)
            installs.append(Installation(code, swap.at, None, swap.initial_energy, old.code))
        registers = Registers(
            load=load,
            tou=tou if spec.utility is Utility.ELECTRICITY else None,
            installations=tuple(installs),
            multiplier=spec.multiplier,
            rollover=spec.rollover,
            resolution=spec.resolution,
            rollovers=faults.of(Rollover),
        )
        return cls(spec, firm, load, faults, registers, _Phases.of(spec, key))

    @property
    def installations(self) -> tuple[Installation, ...]:
        """The physical meters over time (one, or more after replacements): registry rows."""
        return self.registers.installations

    @property
    def register_names(self) -> tuple[str, ...]:
        """Keys of `energy_at`: ``"total"`` and, for electricity, the tariffs."""
        return ("total",) if self.registers.tou is None else ("total", *TARIFFS)

    def power_kw(self, ts: datetime) -> float:
        """Primary-side active power at ``ts``: kW, or m3/h for water and gas."""
        return self.load.power_kw(ts)

    def installation_at(self, ts: datetime) -> Installation:
        """The physical meter in place at ``ts``; `NotInstalledError` before the first."""
        return self.installations[self.registers.installation(ts)]

    def energy_at(self, ts: datetime) -> dict[str, float]:
        """Cumulative forward registers at ``ts``: kWh (m3), secondary side, truncated to the
        register step, wrapped at rollover; ``"total"`` plus, for electricity, the tariffs."""
        return dict(zip(self.register_names, self.registers.read(ts), strict=True))

    def clock(self, ts: datetime) -> datetime:
        """What the meter's clock reads at true time ``ts`` (moved by a `ClockDrift`)."""
        for drift in self.faults.of(ClockDrift):
            if drift.covers(ts):
                since = drift.start or self.installations[0].installed_at
                days = (ts - since).total_seconds() / 86400
                return ts + timedelta(seconds=drift.seconds_per_day * days)
        return ts

    def snapshot(self, ts: datetime, *, faults: bool = True) -> Reading:
        """Every value at true time ``ts``, stamped with the meter's clock (`clock`).

        Electricity: registers, power (kW), phase voltages (V; 220 V x 1.00-1.05 on low
        voltage, 57.7 V behind a PT), currents (A) matching power, voltage and power factor
        (0.85-0.98); all secondary-side. Water and gas: volume (m3) and flow (m3/h). With
        ``faults``, an active `GarbageValues` replaces one value by an absurd one.
        """
        if ts.tzinfo is None:
            raise NaiveTimeError(f"simulated meters need aware times, got {ts!r}")
        spec, regs = self.spec, self.registers
        stamp = ts.timestamp()
        day = int((stamp + LOCAL_OFFSET_S) // 86400)
        seconds = stamp + LOCAL_OFFSET_S - day * 86400
        dl = self.load.day(day)
        values = regs.quantized(regs.raw(regs.installation(ts), day, seconds, dl))
        primary = dl.power(seconds)
        power = primary / spec.multiplier
        when = self.clock(ts) if spec.faults else ts
        if regs.tou is None:
            r = Reading(spec.id, when, values[0], power=_round(power, 1e4), source=self.source)
        else:
            r = self._electrical(when, values, power, primary / spec.rated_power, stamp)
        if faults and spec.faults and (bad := self.faults.active(GarbageValues, ts)) is not None:
            r = self._garbage(r, bad, ts)
        return r

    def values(self, ts: datetime, *, faults: bool = True) -> dict[str, float]:
        """`snapshot` as ``{value field: value}``, missing ones left out (for protocol paths)."""
        reading = self.snapshot(ts, faults=faults)
        return {f: v for f in VALUE_FIELDS if (v := getattr(reading, f)) is not None}

    @property
    def source(self) -> str:
        """`Reading.source` of snapshots: ``sim-<protocol>``."""
        return f"sim-{self.spec.protocol}"

    def _electrical(
        self, when: datetime, regs: list[float], power: float, load: float, stamp: float
    ) -> Reading:
        ph = self._phases
        y = math.sin(math.floor(stamp / 60) * 12.9898 + ph.seed) * 43758.5453  # per minute
        daily = 0.008 * math.cos(2 * math.pi * ((stamp + LOCAL_OFFSET_S) % 86400 - 10800) / 86400)
        sag = 1.0 + daily - 0.02 * load  # grid voltage is highest at 3 a.m., sags under load
        v0, v1, v2 = ph.volts
        va = v0 * (sag + 0.008 * (y % 1 - 0.5))
        vb = v1 * (sag + 0.008 * (y * 7 % 1 - 0.5))
        vc = v2 * (sag + 0.008 * (y * 13 % 1 - 0.5))
        pf = min(0.98, max(0.85, ph.pf + 0.04 * (load - 0.4) + 0.01 * ((y * 17) % 1.0 - 0.5)))
        watts = power * 1000 / pf
        sa, sb, sc = ph.shares
        return Reading(
            meter_id=self.spec.id,
            ts=when,
            energy=regs[0],
            energy_sharp=regs[1],
            energy_peak=regs[2],
            energy_flat=regs[3],
            energy_valley=regs[4],
            power=_round(power, 1e4),
            voltage_a=_round(va, 10.0),
            voltage_b=_round(vb, 10.0),
            voltage_c=_round(vc, 10.0),
            current_a=_round(watts * sa / va, 1e3),
            current_b=_round(watts * sb / vb, 1e3),
            current_c=_round(watts * sc / vc, 1e3),
            power_factor=_round(pf, 1e3),
            source=self.source,
        )

    def _garbage(self, reading: Reading, fault: GarbageValues, ts: datetime) -> Reading:
        names = [f for f in VALUE_FIELDS if getattr(reading, f) is not None]
        name = names[int(self.faults.draw(fault, ts, salt=1) * len(names))]
        value = _GARBAGE[int(self.faults.draw(fault, ts, salt=2) * len(_GARBAGE))]
        if value == -1.0:
            value = -abs(getattr(reading, name)) - 1000.0
        changes: dict[str, Any] = {name: value}
        return reading._replace(**changes)


def build_meters(city: CityConfig, *, gateway: str | None = None) -> list[SimulatedMeter]:
    """The city's meters (only those behind ``gateway`` when given), sharing one TOU table."""
    tou = city.tou_table()
    pairs = city.meters_on(gateway) if gateway is not None else list(city.meters())
    return [SimulatedMeter.build(m, firm=f, seed=city.seed, tou=tou) for f, m in pairs]

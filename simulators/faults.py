"""Fault specs for simulated meters and gateways, and the pure queries protocol simulators ask.

Window faults (`NoAnswer`, `LateAnswer`, `CorruptChecksum`, `GarbageValues`, `ClockDrift`,
`GatewayOffline`, `Stoppage`, `Surge`, `NightLoad`) apply from ``start`` (inclusive) to
``end`` (exclusive), either bound open when ``None``; with ``probability`` < 1 each request
draws deterministically from (seed, owner, fault, time bucket, salt). `Rollover` and
`Replacement` happen at one instant ``at`` and change the registers; `SimulatedMeter`
applies them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from meterhub.reading import LOCAL_OFFSET_S
from simulators.errors import CityConfigError


def derive_key(seed: int, owner: str) -> int:
    """A stable 64-bit key for ``owner`` (e.g. ``"meter:17"``) under ``seed``.

    Example: ``derive_key(42, "meter:17")`` is the same in every process and Python version.
    """
    digest = hashlib.blake2b(f"{seed}:{owner}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """Base of all fault specs; ``kind`` is the name used in city files."""

    kind: ClassVar[str] = ""

    def covers(self, ts: datetime) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowFault(Fault):
    start: datetime | None = None
    end: datetime | None = None
    probability: float = 1.0
    #: Draws are shared by all times in one bucket of this many local seconds (0: per instant).
    bucket: ClassVar[int] = 0

    def covers(self, ts: datetime) -> bool:
        return (self.start is None or self.start <= ts) and (self.end is None or ts < self.end)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAnswer(WindowFault):
    """The meter does not answer at all."""

    kind: ClassVar[str] = "no_answer"


@dataclass(frozen=True, slots=True, kw_only=True)
class LateAnswer(WindowFault):
    """The meter answers after ``delay`` seconds."""

    kind: ClassVar[str] = "late_answer"
    delay: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CorruptChecksum(WindowFault):
    """The answer's checksum (DL/T 645 CS, Modbus CRC) is wrong."""

    kind: ClassVar[str] = "corrupt_checksum"


@dataclass(frozen=True, slots=True, kw_only=True)
class GarbageValues(WindowFault):
    """One value of the answer is absurd (NaN, 1e12, negative); applied by `SimulatedMeter`."""

    kind: ClassVar[str] = "garbage_values"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockDrift(WindowFault):
    """The meter clock gains ``seconds_per_day`` (negative: loses) from ``start`` (default:
    installation) until ``end``, when it is set right again. ``probability`` is ignored."""

    kind: ClassVar[str] = "clock_drift"
    seconds_per_day: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayOffline(WindowFault):
    """A gateway refuses connections; probabilistic outages last 5-minute buckets."""

    kind: ClassVar[str] = "gateway_offline"
    bucket: ClassVar[int] = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Stoppage(WindowFault):
    """Production halts, the load falls to standby; with ``probability`` each local day draws."""

    kind: ClassVar[str] = "stoppage"
    bucket: ClassVar[int] = 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class Surge(WindowFault):
    """The load runs ``factor`` times its usual level (a rush order, a new line on trial),
    never above the meter's rating; with ``probability`` each local day draws."""

    kind: ClassVar[str] = "surge"
    bucket: ClassVar[int] = 86400
    factor: float = 1.8


@dataclass(frozen=True, slots=True, kw_only=True)
class NightLoad(WindowFault):
    """On the firm's working days, machines left running at night: from 22:00 to 06:00 the
    activity is at least ``level`` (0 idle .. 1 full production); days off are unchanged."""

    kind: ClassVar[str] = "night_load"
    bucket: ClassVar[int] = 86400
    level: float = 0.6


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollover(Fault):
    """The total register reads ``rollover - margin`` at ``at``, so it wraps soon after."""

    kind: ClassVar[str] = "rollover"
    at: datetime
    margin: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Replacement(Fault):
    """At ``at`` the meter is swapped: a new meter ``new_code`` (default ``<code>-R<n>``) starts
    at ``initial_energy``. Active from ``at`` on."""

    kind: ClassVar[str] = "replacement"
    at: datetime
    new_code: str | None = None
    initial_energy: float = 0.0

    def covers(self, ts: datetime) -> bool:
        return ts >= self.at


#: Fault classes by their city-file name.
FAULT_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        NoAnswer,
        LateAnswer,
        CorruptChecksum,
        GarbageValues,
        ClockDrift,
        GatewayOffline,
        Stoppage,
        Surge,
        NightLoad,
        Rollover,
        Replacement,
    )
}
F = TypeVar("F", bound=Fault)


@dataclass(frozen=True, slots=True)
class FaultSet:
    """The faults of one meter or gateway, with the key its random draws derive from.

    Example::

        faults = FaultSet((LateAnswer(delay=3.0, probability=0.1),), key=derive_key(42, "meter:7"))
        late = faults.active(LateAnswer, ts)  # the spec (truthy) or None
        if late:
            await asyncio.sleep(late.delay)
    """

    faults: tuple[Fault, ...] = ()
    key: int = 0

    def of(self, kind: type[F]) -> tuple[F, ...]:
        """All faults of ``kind``, in configuration order."""
        return tuple(f for f in self.faults if isinstance(f, kind))

    def draw(self, fault: Fault, ts: datetime, *, salt: int = 0) -> float:
        """A uniform number in [0, 1), fixed by (key, fault, time bucket, salt)."""
        bucket = fault.bucket if isinstance(fault, WindowFault) else 0
        micros = round(ts.timestamp() * 1e6) + LOCAL_OFFSET_S * 1_000_000
        slot = micros // (bucket * 1_000_000) if bucket else micros
        index = self.faults.index(fault)
        data = struct.pack("<QqqqH", self.key, slot, salt, index, len(fault.kind))
        digest = hashlib.blake2b(data + fault.kind.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") / 2.0**64

    def active(self, kind: type[F], ts: datetime, *, salt: int = 0) -> F | None:
        """The fault of ``kind`` in force at ``ts`` (its params), or ``None``.

        Window faults must cover ``ts`` and pass their probability draw (vary ``salt`` per
        request to draw again at the same instant); for `Replacement` the latest one at or
        before ``ts`` is returned.
        """
        found: F | None = None
        for fault in self.faults:
            if not isinstance(fault, kind) or not fault.covers(ts):
                continue
            window = fault if isinstance(fault, WindowFault) else None
            if window is None:  # Rollover, Replacement: the latest one
                if found is None or getattr(fault, "at") >= getattr(found, "at"):  # noqa: B009
                    found = fault
            elif window.probability >= 1.0 or self.draw(fault, ts, salt=salt) < window.probability:
                return fault
        return found


def fault_from_dict(data: Mapping[str, Any], *, where: str) -> Fault:
    """Parse one ``[[...faults]]`` table of a city file."""
    kind = data.get("kind")
    cls = FAULT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CityConfigError(f"{where}: unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
    params = {k: v for k, v in data.items() if k != "kind"}
    types = {f.name: str(f.type) for f in fields(cls)}
    if unknown := sorted(set(params) - set(types)):
        raise CityConfigError(f"{where}: {kind} does not take {unknown}; it takes {sorted(types)}")
    for name, value in params.items():
        if types[name] == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CityConfigError(f"{where}: {name} must be a number, got {value!r}")
            params[name] = float(value)
        elif types[name].startswith("str") and not isinstance(value, str):
            raise CityConfigError(f"{where}: {name} must be a string, got {value!r}")
    try:
        fault = cls(**params)
    except TypeError as exc:
        raise CityConfigError(f"{where}: {kind}: {exc}") from None
    _check(fault, where=where)
    return fault


def fault_to_dict(fault: Fault) -> dict[str, Any]:
    """The city-file table for ``fault``; defaults and ``None`` are left out."""
    out: dict[str, Any] = {"kind": fault.kind}
    for spec in fields(fault):
        value = getattr(fault, spec.name)
        if value is not None and value != spec.default:
            out[spec.name] = value
    return out


def _check(fault: Fault, *, where: str) -> None:
    stamps = [getattr(fault, n, None) for n in ("start", "end", "at")]
    if any(isinstance(s, datetime) and s.tzinfo is None for s in stamps):
        raise CityConfigError(f"{where}: fault times need a UTC offset, e.g. +08:00")
    if any(s is not None and not isinstance(s, datetime) for s in stamps):
        raise CityConfigError(f"{where}: `start`, `end` and `at` must be offset date-times")
    if isinstance(fault, WindowFault):
        if not 0.0 < fault.probability <= 1.0:
            raise CityConfigError(f"{where}: probability must be in (0, 1]")
        if fault.start is not None and fault.end is not None and fault.end <= fault.start:
            raise CityConfigError(f"{where}: `end` must be after `start`")
    if isinstance(fault, LateAnswer) and not fault.delay > 0:
        raise CityConfigError(f"{where}: delay must be positive")
    if isinstance(fault, Surge) and not 0 < fault.factor <= 10:
        raise CityConfigError(f"{where}: factor must be in (0, 10]")
    if isinstance(fault, NightLoad) and not 0 <= fault.level <= 1:
        raise CityConfigError(f"{where}: level must be in [0, 1]")
    if isinstance(fault, Rollover) and not fault.margin >= 0:
        raise CityConfigError(f"{where}: margin must not be negative")
    if isinstance(fault, Replacement) and not fault.initial_energy >= 0:
        raise CityConfigError(f"{where}: initial_energy must not be negative")

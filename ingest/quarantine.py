"""Why a reading is not good data, and the record that keeps it for inspection."""

from __future__ import annotations

import enum
import json
import math
import operator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from meterhub.meter import MeterInfo
from meterhub.reading import VALUE_FIELDS, Reading


class Reason(enum.StrEnum):
    """Machine-readable quarantine reason codes (stable: clients and dashboards key on them)."""

    UNKNOWN_METER = "unknown_meter"
    NAIVE_TIMESTAMP = "naive_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_INSTALLATION = "before_installation"
    AFTER_REMOVAL = "after_removal"
    NON_FINITE = "non_finite"
    NEGATIVE_VALUE = "negative_value"
    ENERGY_BEYOND_ROLLOVER = "energy_beyond_rollover"
    POWER_BEYOND_RATING = "power_beyond_rating"
    OUT_OF_RANGE = "out_of_range"
    MALFORMED_PAYLOAD = "malformed_payload"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    DATABASE_REJECTED = "database_rejected"
    NOT_IN_FEED = "not_in_feed"


@dataclass(slots=True, frozen=True)
class QuarantineRecord:
    source: str
    reason: Reason
    detail: str
    payload: str
    meter_id: int | None = None
    ts: datetime | None = None

    def as_row(self) -> tuple[object, ...]:
        return (self.source, str(self.reason), self.detail, self.meter_id, self.ts, self.payload)


QUARANTINE_COLUMNS = ("source", "reason", "detail", "meter_id", "ts", "payload")

_ENERGY_FIELDS = ("energy", "energy_sharp", "energy_peak", "energy_flat", "energy_valley")
_NON_NEGATIVE = (*_ENERGY_FIELDS, "voltage_a", "voltage_b", "voltage_c")
_MAX_QUALITY = 32767


def reading_payload(reading: Reading) -> str:
    """The reading as JSON, keeping NaN and infinities visible (rare path: stdlib json)."""
    return json.dumps(asdict(reading), default=datetime.isoformat, ensure_ascii=False)


def quarantine(reading: Reading, reason: Reason, detail: str) -> QuarantineRecord:
    return QuarantineRecord(
        source=reading.source,
        reason=reason,
        detail=detail,
        payload=reading_payload(reading),
        meter_id=reading.meter_id,
        ts=reading.ts if reading.ts.tzinfo is not None else None,
    )


def _value_problem(reading: Reading, meter: MeterInfo) -> tuple[Reason, str] | None:
    for name in VALUE_FIELDS:
        value = getattr(reading, name)
        if value is not None and not math.isfinite(value):
            return Reason.NON_FINITE, f"{name} is {value}"
    for name in _NON_NEGATIVE:
        value = getattr(reading, name)
        if value is not None and value < 0:
            return Reason.NEGATIVE_VALUE, f"{name} is {value}"
    for name in _ENERGY_FIELDS:
        value = getattr(reading, name)
        if value is not None and value >= meter.rollover:
            return Reason.ENERGY_BEYOND_ROLLOVER, f"{name} {value} >= rollover {meter.rollover}"
    # Negative power is export (e.g. rooftop PV), so only its magnitude is bounded.
    if reading.power is not None and abs(reading.power) > meter.max_power:
        return Reason.POWER_BEYOND_RATING, f"|power| {reading.power} > rating {meter.max_power}"
    if reading.power_factor is not None and abs(reading.power_factor) > 1:
        return Reason.OUT_OF_RANGE, f"power_factor {reading.power_factor} outside [-1, 1]"
    if not 0 <= reading.quality <= _MAX_QUALITY:
        return Reason.OUT_OF_RANGE, f"quality {reading.quality} outside [0, {_MAX_QUALITY}]"
    return None


_LIMITED = operator.attrgetter(*_NON_NEGATIVE)
_SIGNED = operator.attrgetter("power", "current_a", "current_b", "current_c", "power_factor")


def plausible(reading: Reading, meter: MeterInfo) -> bool:
    """A fast yes for the common case; a False only means `check` must look closely.

    Comparisons are false for NaN, and the sum of finite numbers is finite unless it
    overflows (which also sends the reading to `check`).
    """
    limited = _LIMITED(reading)
    if None in limited:
        limited = tuple(v for v in limited if v is not None)
    if limited and not (min(limited) >= 0.0 and max(limited[:5]) < meter.rollover):
        return False
    signed = _SIGNED(reading)
    if None in signed:
        signed = tuple(v for v in signed if v is not None)
    if signed:
        total = sum(signed)
        if total - total != 0.0:
            return False
    power, pf = reading.power, reading.power_factor
    if power is not None and not -meter.max_power <= power <= meter.max_power:
        return False
    if pf is not None and not -1.0 <= pf <= 1.0:
        return False
    return 0 <= reading.quality <= _MAX_QUALITY


def check(
    reading: Reading, meter: MeterInfo | None, *, now: datetime, future_tolerance: timedelta
) -> QuarantineRecord | None:
    """The quarantine record for ``reading`` if it is not good data, else None."""
    if reading.ts.tzinfo is None:
        return quarantine(reading, Reason.NAIVE_TIMESTAMP, "timestamp has no time zone")
    if meter is None:
        return quarantine(
            reading, Reason.UNKNOWN_METER, f"meter {reading.meter_id} is not registered"
        )
    if reading.ts > now + future_tolerance:
        return quarantine(
            reading, Reason.FUTURE_TIMESTAMP, f"{reading.ts.isoformat()} is after {now.isoformat()}"
        )
    if reading.ts < meter.installed_at:
        return quarantine(
            reading, Reason.BEFORE_INSTALLATION, f"meter installed {meter.installed_at.isoformat()}"
        )
    if meter.removed_at is not None and reading.ts > meter.removed_at:
        return quarantine(
            reading, Reason.AFTER_REMOVAL, f"meter removed {meter.removed_at.isoformat()}"
        )
    problem = _value_problem(reading, meter)
    return quarantine(reading, *problem) if problem else None

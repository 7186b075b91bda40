"""Why a reading is not good data, and the record that keeps it for inspection."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    SUBMIT_FAILED = "submit_failed"
    NOT_IN_FEED = "not_in_feed"
    NO_VALUES = "no_values"


@dataclass(slots=True, frozen=True)
class QuarantineRecord:
    source: str
    reason: Reason
    detail: str
    payload: str
    meter_id: int | None = None
    ts: datetime | None = None

    def as_row(self) -> tuple[object, ...]:
        """The row for COPY; its texts made storable whatever was received."""
        source, detail, payload = pg_text(self.source), pg_text(self.detail), pg_text(self.payload)
        ts = self.ts if self.ts is not None and storable_ts(self.ts) else None
        return (source, str(self.reason), detail, self.meter_id, ts, payload)


def storable_ts(ts: datetime) -> bool:
    """Whether aware ``ts`` is an instant the database can hold: one that exists in UTC
    (``0001-01-01T00:00+14:00`` does not; the payload keeps it as text)."""
    try:
        ts.astimezone(UTC)
    except OverflowError:
        return False
    return True


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL stores it: valid UTF-8 (lone surrogates escaped) and no NUL."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\u0000")


QUARANTINE_COLUMNS = ("source", "reason", "detail", "meter_id", "ts", "payload")

#: Cumulative registers: below the meter's rollover value, never negative.
ENERGY_FIELDS = ("energy", "energy_sharp", "energy_peak", "energy_flat", "energy_valley")
NON_NEGATIVE_FIELDS = (*ENERGY_FIELDS, "voltage_a", "voltage_b", "voltage_c")
#: `quality` is a smallint of bit flags.
MAX_QUALITY = 32767


def reading_payload(reading: Reading) -> str:
    """The reading as JSON, keeping NaN and infinities visible (rare path: stdlib json)."""
    return json.dumps(reading._asdict(), default=_json_default, ensure_ascii=False)


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def quarantine(reading: Reading, reason: Reason, detail: str) -> QuarantineRecord:
    return QuarantineRecord(
        source=reading.source,
        reason=reason,
        detail=detail,
        payload=reading_payload(reading),
        meter_id=reading.meter_id if _is_int64(reading.meter_id) else None,
        ts=reading.ts if isinstance(reading.ts, datetime) and reading.ts.tzinfo else None,
    )


def _is_int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:  # an integer beyond any float
        return False
    return True


def _value_problem(reading: Reading, meter: MeterInfo) -> tuple[Reason, str] | None:
    for name in VALUE_FIELDS:
        value = getattr(reading, name)
        if value is not None and not _is_number(value):
            return Reason.WRONG_TYPE, f"{name} is {type(value).__name__}, not a number"
    if not _is_int64(reading.quality):  # a smallint, its range checked below
        return Reason.WRONG_TYPE, f"quality is {type(reading.quality).__name__}, not an integer"
    if all(getattr(reading, name) is None for name in VALUE_FIELDS):
        return Reason.NO_VALUES, "the reading carries no measured value"
    for name in VALUE_FIELDS:
        value = getattr(reading, name)
        if value is not None and not math.isfinite(value):
            return Reason.NON_FINITE, f"{name} is {value}"
    for name in NON_NEGATIVE_FIELDS:
        value = getattr(reading, name)
        if value is not None and value < 0:
            return Reason.NEGATIVE_VALUE, f"{name} is {value}"
    for name in ENERGY_FIELDS:
        value = getattr(reading, name)
        if value is not None and value >= meter.rollover:
            return Reason.ENERGY_BEYOND_ROLLOVER, f"{name} {value} >= rollover {meter.rollover}"
    # Negative power is export (e.g. rooftop PV), so only its magnitude is bounded.
    if reading.power is not None and abs(reading.power) > meter.max_power:
        return Reason.POWER_BEYOND_RATING, f"|power| {reading.power} > rating {meter.max_power}"
    if reading.power_factor is not None and abs(reading.power_factor) > 1:
        return Reason.OUT_OF_RANGE, f"power_factor {reading.power_factor} outside [-1, 1]"
    if not 0 <= reading.quality <= MAX_QUALITY:
        return Reason.OUT_OF_RANGE, f"quality {reading.quality} outside [0, {MAX_QUALITY}]"
    return None


def check(
    reading: Reading, meter: MeterInfo | None, *, now: datetime, future_tolerance: timedelta
) -> QuarantineRecord | None:
    """The quarantine record for ``reading`` if it is not good data, else None."""
    if not isinstance(reading.ts, datetime):
        return quarantine(reading, Reason.WRONG_TYPE, "timestamp is not a datetime")
    if not _is_int64(reading.meter_id):
        return quarantine(reading, Reason.WRONG_TYPE, "meter_id is not an integer")
    if reading.ts.tzinfo is None:
        return quarantine(reading, Reason.NAIVE_TIMESTAMP, "timestamp has no time zone")
    if not storable_ts(reading.ts):
        return quarantine(
            reading, Reason.OUT_OF_RANGE, f"timestamp {reading.ts.isoformat()} is out of range"
        )
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

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from ingest.quarantine import Reason, check
from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, Reading, Utility

NOW = datetime(2026, 6, 1, 12, tzinfo=LOCAL_TZ)
METER = MeterInfo(
    meter_id=1,
    firm_id=1,
    utility=Utility.ELECTRICITY,
    multiplier=40,
    rollover=1_000_000,
    max_power=100,
    installed_at=datetime(2026, 1, 1, tzinfo=LOCAL_TZ),
    removed_at=datetime(2026, 7, 1, tzinfo=LOCAL_TZ),
)
TOL = timedelta(minutes=5)


def reading(**changes: object) -> Reading:
    values: dict[str, object] = {"meter_id": 1, "ts": NOW, "energy": 10.0, "power": 5.0}
    values.update(changes)
    return Reading(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ts": datetime(2026, 6, 1)}, Reason.NAIVE_TIMESTAMP),
        ({"ts": NOW + timedelta(minutes=6)}, Reason.FUTURE_TIMESTAMP),
        ({"ts": datetime(2025, 12, 31, tzinfo=LOCAL_TZ)}, Reason.BEFORE_INSTALLATION),
        ({"energy": math.nan}, Reason.NON_FINITE),
        ({"voltage_b": math.inf}, Reason.NON_FINITE),
        ({"energy": -0.01}, Reason.NEGATIVE_VALUE),
        ({"energy_valley": -1.0}, Reason.NEGATIVE_VALUE),
        ({"energy": 1_000_000.0}, Reason.ENERGY_BEYOND_ROLLOVER),
        ({"energy_peak": 2_000_000.0}, Reason.ENERGY_BEYOND_ROLLOVER),
        ({"power": 100.5}, Reason.POWER_BEYOND_RATING),
        ({"power": -100.5}, Reason.POWER_BEYOND_RATING),
        ({"power_factor": 1.2}, Reason.OUT_OF_RANGE),
        ({"quality": -1}, Reason.OUT_OF_RANGE),
        ({"energy": None, "power": None}, Reason.NO_VALUES),
        ({"ts": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))}, Reason.OUT_OF_RANGE),
    ],
)
def test_each_problem_has_its_reason(changes: dict[str, object], reason: Reason) -> None:
    record = check(reading(**changes), METER, now=NOW, future_tolerance=TOL)
    assert record is not None
    assert record.reason == reason
    assert record.detail


def test_after_removal() -> None:
    late = reading(ts=datetime(2026, 7, 2, tzinfo=LOCAL_TZ))
    record = check(late, METER, now=late.ts, future_tolerance=TOL)
    assert record is not None and record.reason == Reason.AFTER_REMOVAL


def test_unknown_meter() -> None:
    record = check(reading(), None, now=NOW, future_tolerance=TOL)
    assert record is not None and record.reason == Reason.UNKNOWN_METER


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"ts": NOW + timedelta(minutes=4)},
        {"power": -50.0},  # export (PV) is real
        {"energy": 999_999.99},
        {"energy": None},
        {"power_factor": -0.9},
    ],
)
def test_good_readings_pass(changes: dict[str, object]) -> None:
    assert check(reading(**changes), METER, now=NOW, future_tolerance=TOL) is None


def test_payload_keeps_what_was_received() -> None:
    record = check(
        reading(energy=math.nan, source="mqtt:gw-7"), METER, now=NOW, future_tolerance=TOL
    )
    assert record is not None
    assert record.source == "mqtt:gw-7"
    assert '"energy": NaN' in record.payload


def test_a_record_of_a_time_utc_cannot_hold_keeps_it_in_the_payload_only() -> None:
    ts = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    record = check(reading(ts=ts), None, now=NOW, future_tolerance=TOL)
    assert record is not None and record.ts == ts
    assert record.as_row()[4] is None
    assert "9999-12-31T23:00:00-05:00" in record.payload

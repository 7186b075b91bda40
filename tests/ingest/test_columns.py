"""Readings into columns, and the vectorised screen held to `quarantine.check`: a row the
screen passes is one `check` passes, and the other way round for well-typed rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.columns import from_readings
from ingest.interval_grid import to_micros
from ingest.quarantine import check
from ingest.registry import MeterLimits
from ingest.screen import surely_good
from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, VALUE_FIELDS, Quality, Reading
from tests.ingest.test_quarantine import METER, NOW, TOL

ENERGY = VALUE_FIELDS.index("energy")


def limits_for(meters: list[MeterInfo | None]) -> MeterLimits:
    never, nothing = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    return MeterLimits(
        known=np.array([m is not None for m in meters]),
        installed=np.array([to_micros(m.installed_at) if m else never for m in meters]),
        removed=np.array(
            [to_micros(m.removed_at) if m and m.removed_at else never for m in meters]
        ),
        rollover=np.array([m.rollover if m else 0.0 for m in meters]),
        max_power=np.array([m.max_power if m else 0.0 for m in meters]),
        committed=np.full(len(meters), nothing),
    )


def test_none_and_nan_are_told_apart() -> None:
    columns = from_readings(
        [
            Reading(meter_id=1, ts=NOW, energy=None, power=2.0),
            Reading(meter_id=1, ts=NOW, energy=math.nan, power=None),
        ]
    )
    assert columns.nulls[ENERGY].tolist() == [True, False]
    assert math.isnan(columns.values[ENERGY][1])
    assert not columns.broken.any()


def test_a_water_meter_column_is_all_absent() -> None:
    columns = from_readings([Reading(meter_id=2, ts=NOW, energy=5.0)] * 3)
    assert columns.nulls[ENERGY].tolist() == [False] * 3
    assert columns.nulls[VALUE_FIELDS.index("voltage_a")].all()


def test_what_columns_cannot_hold_breaks_its_row_only() -> None:
    rows = [
        Reading(meter_id=1, ts=NOW, energy=1.0),
        Reading(meter_id=1, ts=datetime(2026, 6, 1), energy=1.0),  # naive
        Reading(meter_id="7", ts=NOW, energy=1.0),  # type: ignore[arg-type]
        Reading(meter_id=1, ts=NOW, energy="12.5"),  # type: ignore[arg-type]
        Reading(meter_id=1, ts=NOW, energy=10**400),
        Reading(meter_id=1, ts=NOW, quality=Quality.ESTIMATED),
    ]
    columns = from_readings(rows)
    assert columns.broken.tolist() == [False, True, True, True, True, False]
    assert columns.quality.tolist()[5] == 1
    for row in (1, 2, 3, 4):
        assert check(columns.reading(row), METER, now=NOW, future_tolerance=TOL) is not None


def test_sources_become_codes() -> None:
    columns = from_readings(
        [Reading(meter_id=1, ts=NOW, source=s) for s in ("a", "b", "a", "网关")]
    )
    assert [columns.sources[c] for c in columns.source.tolist()] == ["a", "b", "a", "网关"]


def test_timestamps_in_any_zone_are_the_same_instant() -> None:
    utc = NOW.astimezone(UTC)
    columns = from_readings([Reading(meter_id=1, ts=NOW), Reading(meter_id=1, ts=utc)])
    assert columns.ts[0] == columns.ts[1] == to_micros(NOW)


VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 100.0, 100.0001, 999_999.99, 1_000_000.0, -1e-9]),
)
STAMPS = st.sampled_from(
    [
        NOW,
        NOW + TOL,
        NOW + TOL + timedelta(microseconds=1),
        METER.installed_at,
        METER.installed_at - timedelta(microseconds=1),
        datetime(2026, 7, 1, 0, 0, 1, tzinfo=LOCAL_TZ),
        datetime(2020, 1, 1, tzinfo=LOCAL_TZ),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # before UTC's first instant
    ]
)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    empty = draw(st.booleans())  # no value at all: no_values
    values: dict[str, object] = {name: None if empty else draw(VALUES) for name in VALUE_FIELDS}
    values["meter_id"] = draw(st.sampled_from([1, 2]))
    values["ts"] = draw(STAMPS)
    values["quality"] = draw(st.sampled_from([0, 1, 32767, 32768, -1]))
    return Reading(**values)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(readings(), min_size=1, max_size=30))
def test_screen_agrees_with_check(batch: list[Reading]) -> None:
    meters: dict[int, MeterInfo | None] = {1: METER, 2: None}
    columns = from_readings(batch)
    ids, position = np.unique(columns.meter_id, return_inverse=True)
    limits = limits_for([meters[int(m)] for m in ids])
    # The removal date lies after NOW: use a later "now" so AFTER_REMOVAL can happen too.
    now = datetime(2026, 7, 2, tzinfo=LOCAL_TZ)
    good = surely_good(columns, limits, position, to_micros(now + TOL))
    for row, reading in enumerate(batch):
        verdict = check(reading, meters[reading.meter_id], now=now, future_tolerance=TOL)
        assert good[row] == (verdict is None), (reading, verdict)

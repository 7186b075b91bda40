"""A pushing terminal's state from its last reading; a polled one's from its polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry.terminals import READING_GRACE, polled_state, pushed_state

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
LONG_AGO = NOW - timedelta(days=90)


@pytest.mark.parametrize(
    ("ago", "online"),
    [
        (timedelta(0), True),
        (2 * QUARTER + READING_GRACE, True),
        (2 * QUARTER + READING_GRACE + timedelta(seconds=1), False),
        (timedelta(days=3), False),
    ],
)
def test_a_reading_within_two_intervals_and_the_grace_is_online(
    ago: timedelta, online: bool
) -> None:
    last = NOW - ago
    state, reason = pushed_state(
        last_reading_at=last, installed_at=LONG_AGO, interval=QUARTER, now=NOW
    )
    assert state is online
    if online:
        assert reason is None
    else:  # the last reading in Shanghai time, and the cadence expected
        assert reason is not None and reason.startswith("no reading since ")
        shanghai = (last + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S")
        assert f"{shanghai}+08:00" in reason and "expected every 15 min" in reason


def test_a_new_meter_is_unknown_until_its_first_reading_is_due() -> None:
    fresh = NOW - QUARTER
    assert pushed_state(last_reading_at=None, installed_at=fresh, interval=QUARTER, now=NOW) == (
        None,
        None,
    )
    late = NOW - timedelta(hours=3)
    state, reason = pushed_state(
        last_reading_at=None, installed_at=late, interval=timedelta(hours=1), now=NOW
    )
    assert state is False and reason == (
        "no reading since installation at 2026-12-02T09:00:00+08:00 (expected every 1 h)"
    )
    state, reason = pushed_state(
        last_reading_at=None, installed_at=LONG_AGO, interval=QUARTER, now=NOW
    )
    assert state is False and reason == "no reading in the past 7 days (expected every 15 min)"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"online": None, "last_success_at": None, "last_error": None}, (None, None)),
        (
            {"online": True, "last_success_at": None, "last_error": "ConnectionRefusedError: x"},
            (False, "never answered a poll: ConnectionRefusedError: x"),
        ),
        ({"online": False, "last_success_at": NOW, "last_error": "timeout"}, (False, "timeout")),
        ({"online": True, "last_success_at": NOW, "last_error": None}, (True, None)),
    ],
)
def test_a_polled_terminal_that_never_answered_is_offline(
    row: dict[str, object], expected: tuple[bool | None, str | None]
) -> None:
    assert polled_state(row) == expected

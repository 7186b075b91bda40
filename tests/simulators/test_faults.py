"""Fault specs: windows, deterministic probability draws, parsing and writing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from simulators.errors import CityConfigError
from simulators.faults import (
    FAULT_KINDS,
    ClockDrift,
    CorruptChecksum,
    FaultSet,
    GatewayOffline,
    LateAnswer,
    NoAnswer,
    Replacement,
    Rollover,
    Stoppage,
    derive_key,
    fault_from_dict,
    fault_to_dict,
)
from tests.simulators.core_builders import at

START, END = at(2026, 1, 6, 9), at(2026, 1, 6, 11)


def test_derive_key_is_stable() -> None:
    assert derive_key(42, "meter:17") == derive_key(42, "meter:17")
    assert derive_key(42, "meter:17") != derive_key(43, "meter:17")
    assert derive_key(42, "meter:17") != derive_key(42, "meter:18")
    assert derive_key(1, "meter:1") == 0xAE1D9B609FA96E37  # pinned: same in every process


def test_window_is_half_open() -> None:
    faults = FaultSet((NoAnswer(start=START, end=END),))
    assert faults.active(NoAnswer, START - timedelta(microseconds=1)) is None
    assert faults.active(NoAnswer, START) == NoAnswer(start=START, end=END)
    assert faults.active(NoAnswer, END - timedelta(seconds=1)) is not None
    assert faults.active(NoAnswer, END) is None
    assert faults.active(CorruptChecksum, START) is None


def test_open_window_and_params() -> None:
    faults = FaultSet((LateAnswer(delay=3.5),))
    late = faults.active(LateAnswer, at(2030, 1, 1))
    assert late is not None and late.delay == 3.5


def test_probability_draws_are_deterministic_and_near_the_rate() -> None:
    fault = NoAnswer(probability=0.2)
    faults = FaultSet((fault,), key=derive_key(7, "meter:1"))
    times = [START + timedelta(seconds=s) for s in range(5000)]
    hits = [faults.active(NoAnswer, t) is not None for t in times]
    again = [FaultSet((fault,), key=derive_key(7, "meter:1")).active(NoAnswer, t) for t in times]
    assert hits == [a is not None for a in again]
    assert 900 <= sum(hits) <= 1100
    other = FaultSet((fault,), key=derive_key(8, "meter:1"))
    assert hits != [other.active(NoAnswer, t) is not None for t in times]


def test_salt_draws_again_at_the_same_instant() -> None:
    faults = FaultSet((NoAnswer(probability=0.5),), key=5)
    draws = {faults.draw(faults.faults[0], START, salt=s) for s in range(50)}
    assert len(draws) == 50 and all(0.0 <= d < 1.0 for d in draws)


def test_bucketed_faults_share_a_draw() -> None:
    day = Stoppage(probability=0.5)
    faults = FaultSet((day,), key=11)
    local_midnight = at(2026, 3, 4)
    same = {faults.draw(day, local_midnight + timedelta(hours=h)) for h in range(24)}
    assert len(same) == 1
    assert faults.draw(day, local_midnight + timedelta(days=1)) not in same
    outage = GatewayOffline(probability=0.5)
    gateway = FaultSet((outage,), key=11)
    five = {gateway.draw(outage, local_midnight + timedelta(seconds=s)) for s in range(0, 300, 7)}
    assert len(five) == 1


def test_latest_replacement_is_active() -> None:
    first = Replacement(at=at(2026, 1, 10))
    second = Replacement(at=at(2026, 2, 10), new_code="NEW")
    faults = FaultSet((second, first))
    assert faults.active(Replacement, at(2026, 1, 9)) is None
    assert faults.active(Replacement, at(2026, 1, 10)) == first
    assert faults.active(Replacement, at(2026, 3, 1)) == second
    assert faults.of(Replacement) == (second, first)


@pytest.mark.parametrize(
    "fault",
    [
        NoAnswer(start=START, end=END, probability=0.25),
        LateAnswer(delay=4.0),
        CorruptChecksum(probability=0.1),
        ClockDrift(seconds_per_day=-12.5, start=START),
        GatewayOffline(start=START, end=END),
        Stoppage(start=START, end=END),
        Rollover(at=START, margin=25.0),
        Replacement(at=START, new_code="YW-E-9", initial_energy=1.5),
    ],
)
def test_dict_round_trip(fault: Any) -> None:
    data = fault_to_dict(fault)
    assert data["kind"] == fault.kind
    assert fault_from_dict(data, where="t") == fault


def test_to_dict_leaves_defaults_out() -> None:
    assert fault_to_dict(LateAnswer()) == {"kind": "late_answer"}
    assert fault_to_dict(Rollover(at=START)) == {"kind": "rollover", "at": START}


def test_every_kind_is_listed() -> None:
    assert sorted(FAULT_KINDS) == [
        "clock_drift", "corrupt_checksum", "garbage_values", "gateway_offline", "late_answer",
        "night_load", "no_answer", "replacement", "rollover", "stoppage", "surge",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "meteor"}, "unknown fault kind"),
        ({"kind": "no_answer", "delay": 1.0}, "does not take"),
        ({"kind": "late_answer", "delay": "soon"}, "must be a number"),
        ({"kind": "late_answer", "delay": 0}, "delay must be positive"),
        ({"kind": "no_answer", "probability": 1.5}, "probability"),
        ({"kind": "no_answer", "start": END, "end": START}, "after"),
        ({"kind": "no_answer", "start": START.replace(tzinfo=None)}, "UTC offset"),
        ({"kind": "no_answer", "start": "tomorrow"}, "offset date-times"),
        ({"kind": "rollover"}, "at"),
        ({"kind": "rollover", "at": START, "margin": -1}, "margin"),
        ({"kind": "replacement", "at": START, "new_code": 7}, "must be a string"),
        ({"kind": "replacement", "at": START, "initial_energy": -1}, "initial_energy"),
        ({"kind": "late_answer", "delay": True}, "must be a number"),
    ],
)
def test_bad_faults_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CityConfigError, match=message):
        fault_from_dict(data, where="meter 1")

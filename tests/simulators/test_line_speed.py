"""Line timing arithmetic: character times, frames, gaps and whole exchanges."""

from __future__ import annotations

import pytest

from simulators.line_speed import LineTiming, dlt645_line, modbus_rtu


def test_a_character_at_2400_baud_8e1_takes_eleven_bit_times() -> None:
    line = dlt645_line(2400)
    assert line.char_time == pytest.approx(11 / 2400)
    assert line.frame(16) == pytest.approx(16 * 11 / 2400)  # a read request, FE preamble in


def test_dlt645_has_no_gap_and_the_standards_minimum_turnaround() -> None:
    line = dlt645_line()
    assert line.baud == 2400
    assert line.gap == 0
    assert line.turnaround == pytest.approx(0.020)
    assert line.exchange(16, 40) == pytest.approx(56 * 11 / 2400 + 0.020)


def test_modbus_rtu_keeps_three_and_a_half_characters_between_frames() -> None:
    line = modbus_rtu(9600, turnaround=0.0)
    assert line.gap == pytest.approx(3.5 * 11 / 9600)
    # request 8 bytes, reply 5 + 2 * 2 bytes, a gap after each frame
    assert line.exchange(8, 9) == pytest.approx((8 + 9 + 7) * 11 / 9600)


def test_modbus_rtu_above_19200_baud_has_a_fixed_gap() -> None:
    assert modbus_rtu(38400).gap == pytest.approx(0.00175)
    assert modbus_rtu(19200).gap == pytest.approx(3.5 * 11 / 19200)


def test_turnaround_sits_between_request_and_reply() -> None:
    line = LineTiming(9600, bits=10, gap=0.001, turnaround=0.05)
    assert line.request(8) == pytest.approx(8 * 10 / 9600 + 0.001 + 0.05)
    assert line.reply(9) == pytest.approx(9 * 10 / 9600 + 0.001)
    assert line.exchange(8, 9) == pytest.approx(line.request(8) + line.reply(9))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baud": 0},
        {"baud": 9600, "bits": 0},
        {"baud": 9600, "gap": -1},
        {"baud": 1, "turnaround": -1},
    ],
)
def test_impossible_lines_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LineTiming(**kwargs)  # type: ignore[arg-type]


def test_impossible_baud_rates_are_refused_by_the_protocol_helpers() -> None:
    with pytest.raises(ValueError):
        modbus_rtu(0)
    with pytest.raises(ValueError):
        dlt645_line(-2400)
    with pytest.raises(ValueError):
        LineTiming(2400).frame(-1)

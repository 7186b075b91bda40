"""Load profiles: determinism, shifts, weekends, Spring Festival, seasons, rating, stoppages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from statistics import fmean

import pytest

from simulators.errors import NaiveTimeError
from simulators.faults import FaultSet, Stoppage, derive_key
from simulators.industry import (
    DEFAULT_PROFILE,
    INDUSTRIES,
    IndustryProfile,
    Shift,
    Weekend,
    industry_profile,
)
from simulators.profile import (
    KNOT_SECONDS,
    SPRING_FESTIVAL,
    DayKind,
    LoadProfile,
    activity_shape,
    day_kind,
    day_start,
    season_factor,
    split_time,
)
from simulators.tariff import SLOTS_PER_DAY
from tests.simulators.core_builders import at, hours

JEWELLERY = industry_profile("C2438")  # one shift, Sunday off


def load(
    seed: int = 7, *, industry: IndustryProfile = JEWELLERY, faults: FaultSet | None = None,
    load_factor: float = 0.6, standby: float = 0.07,
) -> LoadProfile:  # fmt: skip
    key = derive_key(seed, "meter:1")
    return LoadProfile(
        key=key,
        rated=100.0,
        load_factor=load_factor,
        standby=standby,
        industry=industry,
        faults=faults or FaultSet(key=key),
    )


def mean_power(profile: LoadProfile, start: datetime, count: float) -> float:
    return fmean(profile.power_kw(t) for t in hours(start, count, 60))


def test_same_seed_same_values_other_seed_other_values() -> None:
    times = hours(at(2026, 3, 4), 24, 97)
    first = [load(7).power_kw(t) for t in times]
    assert first == [load(7).power_kw(t) for t in reversed(times)][::-1]
    other = [load(8).power_kw(t) for t in times]
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_values_do_not_depend_on_what_was_asked_before() -> None:
    t = at(2026, 3, 4, 10, 17, 3)
    fresh = load().power_kw(t)
    warmed = load()
    for day in range(40):
        warmed.power_kw(at(2026, 1, 1) + timedelta(days=day))
    assert warmed.power_kw(t) == fresh


def test_one_shift_workday_above_night_above_festival_standby() -> None:
    profile = load()
    wednesday = at(2026, 3, 4)
    assert wednesday.weekday() == 2
    working = mean_power(profile, wednesday.replace(hour=9), 2)
    night = mean_power(profile, wednesday.replace(hour=1), 3)
    festival = mean_power(profile, at(2026, 2, 17, 9), 2)  # New Year's Day 2026
    assert working > 2.5 * night
    assert night > 1.2 * festival
    day = split_time(at(2026, 2, 17))[0]
    growth = 1.03 ** ((date(2026, 2, 17) - date(2024, 1, 1)).days / 365.25)
    standby = 100.0 * 0.07 * season_factor(day, JEWELLERY.summer_boost) * growth
    assert standby * 0.92 < festival < standby * 1.08


def test_lunch_break_dips() -> None:
    profile = load()
    morning = mean_power(profile, at(2026, 3, 4, 10), 1)
    lunch = mean_power(profile, at(2026, 3, 4, 12, 15), 0.5)
    assert lunch < 0.6 * morning


def test_sunday_lower_than_wednesday_for_a_sunday_off_industry() -> None:
    profile = load()
    assert at(2026, 3, 8).weekday() == 6
    sunday = mean_power(profile, at(2026, 3, 8), 24)
    wednesday = mean_power(profile, at(2026, 3, 4), 24)
    assert sunday < 0.5 * wednesday


def test_seven_day_industry_runs_on_sunday() -> None:
    profile = load(industry=industry_profile("C3825"))  # photovoltaic, three shifts
    sunday = mean_power(profile, at(2026, 3, 8), 24)
    wednesday = mean_power(profile, at(2026, 3, 4), 24)
    assert 0.85 < sunday / wednesday < 1.15


def test_summer_above_spring() -> None:
    profile = load()
    july = [at(2026, 7, d, 10) for d in range(13, 25) if date(2026, 7, d).weekday() < 5]
    april = [at(2026, 4, d, 10) for d in range(13, 25) if date(2026, 4, d).weekday() < 5]
    summer = fmean(mean_power(profile, t, 1) for t in july)
    spring = fmean(mean_power(profile, t, 1) for t in april)
    assert summer > 1.06 * spring


def test_season_factor_values() -> None:
    def day(d: date) -> int:
        return split_time(at(d.year, d.month, d.day))[0]

    assert season_factor(day(date(2026, 7, 24)), 0.12) == pytest.approx(1.12, abs=0.001)
    assert season_factor(day(date(2026, 4, 20)), 0.12) == pytest.approx(1.0, abs=0.002)
    assert season_factor(day(date(2026, 1, 10)), 0.12) == pytest.approx(1.04, abs=0.001)


def test_power_never_exceeds_the_rating() -> None:
    hot = IndustryProfile(
        "C9999", "test", "测试", Shift.THREE, Weekend.SEVEN_DAYS, summer_boost=0.3
    )
    profile = load(industry=hot, load_factor=1.0, standby=0.1)
    start = split_time(at(2026, 1, 1))[0]
    knots = [p for day in range(start, start + 366) for p in profile.knots(day)]
    assert max(knots) == 100.0  # clamped at the rating
    assert min(knots) > 0.0
    between = [profile.power_kw(t) for t in hours(at(2026, 7, 24), 24, 37)]
    assert max(between) <= 100.0


def test_power_is_continuous_and_linear_between_knots() -> None:
    profile = load()
    midnight = at(2026, 3, 5)
    before = profile.power_kw(midnight - timedelta(microseconds=1))
    assert before == pytest.approx(profile.power_kw(midnight), abs=1e-6)
    knot = at(2026, 3, 4, 10, 5)
    p0 = profile.power_kw(knot)
    p1 = profile.power_kw(knot + timedelta(seconds=KNOT_SECONDS))
    assert profile.power_kw(knot + timedelta(seconds=100)) == pytest.approx(p0 + (p1 - p0) / 3)


def test_stoppage_window_drops_to_standby() -> None:
    key = derive_key(7, "meter:1")
    stop = Stoppage(start=at(2026, 3, 4, 0), end=at(2026, 3, 6, 0))
    stopped = load(faults=FaultSet((stop,), key=key))
    normal = load()
    during = mean_power(stopped, at(2026, 3, 4, 9), 2)
    assert during < 0.2 * mean_power(normal, at(2026, 3, 4, 9), 2)
    assert during == pytest.approx(100 * 0.07, rel=0.12)
    after = at(2026, 3, 6, 9)
    assert stopped.power_kw(after) == normal.power_kw(after)


def test_probabilistic_stoppage_stops_whole_days() -> None:
    key = derive_key(7, "meter:1")
    faults = FaultSet((Stoppage(probability=0.5),), key=key)
    profile, normal = load(faults=faults), load()
    start = split_time(at(2026, 3, 2))[0]
    stopped = [profile.knots(d) != normal.knots(d) for d in range(start, start + 60)]
    assert 15 <= sum(stopped) <= 45
    for d in range(start, start + 60):  # a day is either all standby or untouched
        ratio = [a / b for a, b in zip(profile.knots(d), normal.knots(d), strict=True)]
        assert max(ratio) <= 1.0 + 1e-12


@pytest.mark.parametrize(
    ("day", "weekend", "kind"),
    [
        (date(2026, 3, 4), Weekend.SUNDAY_OFF, DayKind.WORK),
        (date(2026, 3, 7), Weekend.SUNDAY_OFF, DayKind.WORK),
        (date(2026, 3, 8), Weekend.SUNDAY_OFF, DayKind.OFF),
        (date(2026, 3, 7), Weekend.SATURDAY_HALF, DayKind.HALF),
        (date(2026, 3, 8), Weekend.SATURDAY_HALF, DayKind.OFF),
        (date(2026, 3, 8), Weekend.SEVEN_DAYS, DayKind.WORK),
        (date(2026, 2, 9), Weekend.SEVEN_DAYS, DayKind.WORK),  # 8 days before
        (date(2026, 2, 10), Weekend.SEVEN_DAYS, DayKind.FESTIVAL),  # 7 days before
        (date(2026, 2, 27), Weekend.SUNDAY_OFF, DayKind.FESTIVAL),  # 10 days after
        (date(2026, 2, 28), Weekend.SUNDAY_OFF, DayKind.WORK),
        (date(2025, 1, 29), Weekend.SUNDAY_OFF, DayKind.FESTIVAL),
        (date(2030, 2, 3), Weekend.SUNDAY_OFF, DayKind.FESTIVAL),
    ],
)
def test_day_kind(day: date, weekend: Weekend, kind: DayKind) -> None:
    number = split_time(at(day.year, day.month, day.day, 12))[0]
    assert day_kind(number, weekend) is kind


def test_spring_festival_table() -> None:
    assert sorted(SPRING_FESTIVAL) == list(range(2023, 2032))
    assert SPRING_FESTIVAL[2024] == date(2024, 2, 10)
    assert SPRING_FESTIVAL[2027] == date(2027, 2, 6)


def test_activity_shapes() -> None:
    work = activity_shape(Shift.ONE, DayKind.WORK, idle=0.12, festival=0.0)
    assert len(work) == SLOTS_PER_DAY
    assert work[0] == 0.12 and work[10 * 12] == 1.0 and work[12 * 12 + 6] == 0.35
    two = activity_shape(Shift.TWO, DayKind.WORK, idle=0.12, festival=0.0)
    assert two[22 * 12] == 1.0 and two[3 * 12] == 0.12
    three = activity_shape(Shift.THREE, DayKind.WORK, idle=0.12, festival=0.0)
    assert min(three) == 0.85 and three[12 * 12] == 0.95
    assert set(activity_shape(Shift.ONE, DayKind.FESTIVAL, idle=0.12, festival=0.3)) == {0.3}


def test_split_time_and_day_start() -> None:
    day, seconds = split_time(at(2026, 3, 4, 10, 30))
    assert seconds == 37800.0
    assert day_start(day) == at(2026, 3, 4)
    with pytest.raises(NaiveTimeError):
        split_time(datetime(2026, 3, 4))


def test_industry_lookup() -> None:
    assert industry_profile("C2438").shift is Shift.ONE
    dyeing_like = industry_profile("C1711")  # same division as C1713
    assert dyeing_like.code == "C1711" and dyeing_like.shift is INDUSTRIES["C1713"].shift
    unknown = industry_profile("C4411", shift=Shift.TWO, weekend=Weekend.SEVEN_DAYS)
    assert unknown.name == DEFAULT_PROFILE.name
    assert (unknown.code, unknown.shift, unknown.weekend) == (
        "C4411",
        Shift.TWO,
        Weekend.SEVEN_DAYS,
    )

"""A planted city (pure generation): a firm built for each weekly rule, plain firms built for
none, and output figures that follow each firm's simulated electricity."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from alerts.monthly_rules import judged_month
from alerts.rulebook import CODES
from meterhub.reading import LOCAL_TZ, Utility
from simulators.city import generate_city
from simulators.city_file import dump_city, parse_city
from simulators.config import CityConfig, FirmSpec
from simulators.errors import CityConfigError
from simulators.faults import FaultSet, NightLoad, Stoppage, Surge
from simulators.figures import DailyEnergy, month_range, output_figures
from simulators.industry import SEED_INDUSTRIES, industry_profile
from simulators.meter import build_meters
from simulators.plans import PLANTED
from simulators.profile import LoadProfile, split_time
from simulators.tariff import SLOTS_PER_DAY

START = datetime(2026, 10, 12, tzinfo=LOCAL_TZ)
WEEK = date(2026, 11, 16)
LOAD_FAULTS = (Stoppage, Surge, NightLoad)


@pytest.fixture(scope="module")
def city() -> CityConfig:
    return generate_city(
        firms=150,
        seed=11,
        start=START,
        industries=SEED_INDUSTRIES,
        history_months=25,
        plant_week=WEEK,
    )


def plain(city: CityConfig) -> list[FirmSpec]:
    return [f for f in city.firms if not f.expect]


def test_every_planted_rule_has_firms_and_every_expectation_is_a_rule(city: CityConfig) -> None:
    expected = {rule for firm in city.firms for rule in firm.expect}
    assert set(PLANTED) <= expected
    assert expected <= set(CODES)
    assert {f.industry for f in city.firms} <= set(SEED_INDUSTRIES)
    assert len(plain(city)) >= 100  # most firms are built to trigger nothing


def test_plain_firms_carry_nothing_a_rule_would_report(city: CityConfig) -> None:
    for firm in plain(city):
        assert not firm.lists and not firm.tags
        assert all(c.class_ != "D" for c in firm.classes)
        assert all(p.year < 2018 for p in firm.projects)
        assert firm.output is not None and not firm.output.adjust
        typical = industry_profile(firm.industry).kwh_per_10k_yuan
        assert 0.92 * typical <= firm.output.kwh_per_10k_yuan <= 1.08 * typical
        faults = [f for m in firm.meters for f in m.faults]
        assert not [f for f in faults if isinstance(f, LOAD_FAULTS)]


def test_planted_anomalies_fall_in_the_planted_week(city: CityConfig) -> None:
    monday = datetime.combine(WEEK, datetime.min.time(), LOCAL_TZ)
    for firm in city.firms:
        for fault in (f for m in firm.meters for f in m.faults if isinstance(f, LOAD_FAULTS)):
            assert fault.start is not None and monday <= fault.start < monday + timedelta(days=7)
        if "baseline_excess" in firm.expect:
            assert firm.output is not None
            assert firm.output.factor(judged_month(WEEK)) == 0.7
        if "d_class_two_years" in firm.expect:
            assert [(c.year, c.class_) for c in firm.classes] == [(2024, "D"), (2025, "D")]


def test_the_same_seed_and_week_give_the_same_city(city: CityConfig) -> None:
    again = generate_city(
        firms=150,
        seed=11,
        start=START,
        industries=SEED_INDUSTRIES,
        history_months=25,
        plant_week=WEEK,
    )
    assert again == city


def test_the_city_file_keeps_output_lists_projects_and_classes(city: CityConfig) -> None:
    text = dump_city(city)
    assert "[[firms.classes]]" in text and 'class = "D"' in text
    assert parse_city(tomllib.loads(text)) == city


def test_a_bad_list_or_class_is_refused_with_the_firm_named(city: CityConfig) -> None:
    data = tomllib.loads(dump_city(city))
    data["firms"][0]["lists"] = [{"list": "blacklist", "since": date(2025, 1, 1)}]
    with pytest.raises(CityConfigError, match="blacklist"):
        parse_city(data)
    data["firms"][0]["lists"] = []
    data["firms"][0]["classes"] = [{"year": 2025, "class": "E"}]
    with pytest.raises(CityConfigError, match="classes"):
        parse_city(data)


def _firm_book(city: CityConfig, firm: FirmSpec, months: list[date]) -> DailyEnergy:
    one = replace(city, firms=(firm,), gateways=city.gateways)
    meters = [m for m in build_meters(one) if m.spec.utility is Utility.ELECTRICITY]
    return DailyEnergy.of(meters, first=months[0], end=months[-1] + timedelta(days=31))


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    b = sxy / sxx
    return my - b * mx, b, (sxy * sxy) / (sxx * syy)


def test_output_figures_follow_the_firms_electricity(city: CityConfig) -> None:
    months = month_range(date(2024, 10, 1), date(2026, 9, 1))
    firm = next(f for f in plain(city) if f.output is not None)
    assert firm.output is not None
    book = _firm_book(city, firm, months)
    figures = list(output_figures(city, book, months=months))
    ids = [m.id for m in firm.meters if m.utility is Utility.ELECTRICITY]
    kwh = [book.month(ids, m) for m in months]
    output = [float(f.output_value) for f in figures]
    assert [f.month for f in figures] == months
    a, b, r2 = _fit(output, kwh)
    assert r2 > 0.9  # an ISO 50006 baseline fits
    assert a == pytest.approx(firm.output.base_kwh, abs=0.05 * sum(kwh) / len(kwh))
    assert b * 10_000 == pytest.approx(firm.output.kwh_per_10k_yuan, rel=0.06)
    for figure in figures:
        assert float(figure.value_added) == pytest.approx(
            float(figure.output_value) * firm.output.value_added_share, abs=1
        )
        assert figure.employees == firm.output.employees and figure.emissions_t >= 0


def test_the_baseline_host_reports_less_output_than_its_energy_implies(city: CityConfig) -> None:
    month = judged_month(WEEK)
    firm = next(f for f in city.firms if "baseline_excess" in f.expect)
    book = _firm_book(city, firm, [month])
    (planted,) = output_figures(city, book, months=[month])
    honest = replace(firm, output=replace(firm.output, adjust=()))  # type: ignore[type-var]
    (usual,) = output_figures(replace(city, firms=(honest,)), book, months=[month])
    assert float(planted.output_value) == pytest.approx(0.7 * float(usual.output_value), rel=1e-6)


def test_the_two_high_host_uses_over_1000_tce_a_year_and_plain_firms_under_5000(
    city: CityConfig,
) -> None:
    months = month_range(date(2025, 10, 1), date(2026, 9, 1))
    host = next(f for f in city.firms if "two_high" in f.expect)
    assert [p.year for p in host.projects] == [2019]

    def tce(firm: FirmSpec) -> float:
        book = _firm_book(city, firm, months)
        ids = [m.id for m in firm.meters if m.utility is Utility.ELECTRICITY]
        return sum(book.month(ids, m) for m in months) * 0.1229 / 1000

    assert tce(host) >= 1000
    biggest = max(plain(city), key=lambda f: sum(m.rated_power for m in f.meters))
    assert tce(biggest) < 5000


def _profile(*faults: object) -> LoadProfile:
    return LoadProfile(
        key=5,
        rated=100.0,
        load_factor=0.45,
        standby=0.07,
        industry=industry_profile("C2438"),
        faults=FaultSet(tuple(faults), key=3),  # type: ignore[arg-type]
    )


def _night_share(profile: LoadProfile, day: int) -> float:
    cum = profile.day(day).cum
    per_hour = SLOTS_PER_DAY // 24
    return (cum[6 * per_hour] + cum[-1] - cum[22 * per_hour]) / cum[-1]


def test_a_surge_day_and_a_night_load_change_the_load_as_their_names_say() -> None:
    wednesday = datetime(2026, 11, 18, tzinfo=LOCAL_TZ)
    day = split_time(wednesday)[0]
    usual = _profile()
    surge = _profile(Surge(start=wednesday, end=wednesday + timedelta(days=1), factor=1.8))
    night = _profile(NightLoad(start=wednesday, level=0.6))
    assert surge.day(day).cum[-1] == pytest.approx(1.8 * usual.day(day).cum[-1], rel=1e-3)
    assert surge.day(day + 1).cum[-1] == usual.day(day + 1).cum[-1]
    assert _night_share(night, day) - _night_share(usual, day) > 0.15
    sunday = day + 4  # a day off keeps its load (up to Monday's raised first knot)
    assert night.day(sunday).cum[:-1] == usual.day(sunday).cum[:-1]


@pytest.mark.parametrize("faults", [(), (Stoppage(start=datetime(2026, 11, 17, tzinfo=LOCAL_TZ)),)])
def test_day_energy_is_within_3_percent_of_the_exact_integral(faults: tuple[object, ...]) -> None:
    profile = _profile(*faults)
    first = split_time(datetime(2026, 11, 1, tzinfo=LOCAL_TZ))[0]
    for day in range(first, first + 30):
        exact = profile.day(day).cum[-1]
        assert math.isclose(profile.day_energy(day), exact, rel_tol=0.03)

"""What the city generator gives each firm besides meters: its output spec (how its monthly
figures follow its electricity) and, for plain firms of a planted city, the odd official
class and older project that trigger no rule."""

from __future__ import annotations

import random
from dataclasses import replace

from meterhub.reading import Utility
from simulators.config import FirmSpec, MeterSpec
from simulators.firm_data import ClassSpec, OutputSpec, ProjectSpec
from simulators.industry import industry_profile

#: Hours a year of full load a generated firm's electricity meters average (estimate).
_FULL_LOAD_HOURS = 0.3 * 8760
_KGCE_PER_KWH = 0.1229  # GB/T 2589 calorific value, for the size estimate only
_OLD_PROJECTS = ("一期厂房", "生产线改造", "仓储车间", "技改项目")


def annual_kwh(meters: tuple[MeterSpec, ...]) -> float:
    """A rough yearly electricity of ``meters`` from their ratings (for sizing decisions)."""
    return sum(
        m.rated_power * m.load_factor * _FULL_LOAD_HOURS
        for m in meters
        if m.utility is Utility.ELECTRICITY
    )


def annual_tce(meters: tuple[MeterSpec, ...]) -> float:
    return annual_kwh(meters) * _KGCE_PER_KWH / 1000


def output_spec(rng: random.Random, firm: FirmSpec) -> OutputSpec:
    """The firm's industry intensity within +-8 %, a base load of 5-15 % of a month's
    electricity, and shares and head count of plausible size."""
    profile = industry_profile(firm.industry)
    monthly_kwh = annual_kwh(firm.meters) / 12
    intensity = profile.kwh_per_10k_yuan * rng.uniform(0.92, 1.08)
    yearly_output = max(1.0, annual_kwh(firm.meters) * 0.9 / intensity * 10_000)
    return OutputSpec(
        kwh_per_10k_yuan=round(intensity, 1),
        base_kwh=round(monthly_kwh * rng.uniform(0.05, 0.15), 0),
        noise=0.03,
        value_added_share=round(profile.value_added_share * rng.uniform(0.85, 1.15), 3),
        tax_share=round(rng.uniform(0.02, 0.05), 4),
        revenue_share=round(rng.uniform(0.97, 1.06), 3),
        rnd_share=round(rng.uniform(0.005, 0.04), 4),
        employees=max(5, round(yearly_output / rng.uniform(4e5, 9e5))),
        emissions_t_per_10k_yuan=round(profile.emissions_t_per_10k_yuan * rng.uniform(0.7, 1.3), 5),
    )


def quiet_extras(rng: random.Random, firm: FirmSpec, *, year: int) -> FirmSpec:
    """Data a plain firm may carry without triggering a rule: official classes A-C of the
    two previous years (one firm in eight) and a project built before 2018 (one in five,
    under the older two-high threshold of 5,000 tce, which no generated plain firm
    reaches)."""
    classes: tuple[ClassSpec, ...] = ()
    projects: tuple[ProjectSpec, ...] = ()
    if rng.random() < 0.125:
        classes = tuple(ClassSpec(year=y, class_=rng.choice("ABC")) for y in (year - 2, year - 1))
    if rng.random() < 0.2:
        built = rng.randint(2003, 2017)
        projects = (ProjectSpec(name=rng.choice(_OLD_PROJECTS), year=built),)
    return replace(firm, classes=classes, projects=projects)

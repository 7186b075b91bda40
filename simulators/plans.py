"""Firms built to trigger each weekly rule (alerts/rules.toml) in one judged week, the rest
built to trigger none: what `generate_city(plant_week=...)` does to a generated city.

Everything a plan changes is data in the city file (faults, the output spec, lists,
projects, classes) and the firm's ``expect`` names the rules it should trigger, so a test
or a curious user can check the findings against it. Hosts are drawn by the city's random
stream, so the same seed and week give the same plan.

=====================  ==========================================================
rule                   how the host firm is built
=====================  ==========================================================
suspected_stoppage     a one-shift firm stops Monday to Friday of the week
suspected_cutback      a one-shift firm works only the Wednesday of the week
energy_surge           a one-shift firm runs at 1.8 x its load on the Wednesday
idle_load              a one-shift firm leaves machines running at night (80 % load)
baseline_excess        output reported at 70 % of what energy implies in the judged month
intensity_peers        2.6 x the electricity per output of its industry, every month
two_high               a three-shift dyeing line of about 2.4 MW, project built 2019
monitored_list         on the unrectified D-class list since last January
d_class_two_years      officially class D in the two previous years (and on the list)
terminal_offline       a polled meter stops answering on the Thursday (also
                       ``data_incomplete``: its days are no longer complete)
=====================  ==========================================================
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Final

from alerts.monthly_rules import judged_month
from meterhub.reading import LOCAL_TZ, Utility
from simulators.config import FirmSpec, MeterSpec
from simulators.faults import Fault, NightLoad, NoAnswer, Stoppage, Surge
from simulators.firm_data import ClassSpec, ListSpec, OutputAdjust, ProjectSpec
from simulators.industry import Shift, Weekend, industry_profile

#: The rules a planted city has a firm for, in planting order.
PLANTED: Final = (
    "two_high",
    "intensity_peers",
    "suspected_stoppage",
    "suspected_cutback",
    "energy_surge",
    "idle_load",
    "baseline_excess",
    "terminal_offline",
    "monitored_list",
    "d_class_two_years",
)
TWO_HIGH_KW: Final = 2400.0  # primary-side rating of the two-high firm's line
_INTENSITY_FACTOR: Final = 2.6
_MIN_PEERS: Final = 6  # the intensity host's division needs this many firms


def _at(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), LOCAL_TZ)


def _electric(firm: FirmSpec) -> list[MeterSpec]:
    return [m for m in firm.meters if m.utility is Utility.ELECTRICITY]


def _with_faults(
    firm: FirmSpec, *faults: Fault, load: tuple[float, float] | None = None
) -> FirmSpec:
    """The firm with ``faults`` on each electricity meter, and its (load factor, standby)
    set to ``load`` when given."""
    meters = []
    for m in firm.meters:
        if m.utility is Utility.ELECTRICITY:
            m = replace(m, faults=m.faults + faults)
            if load is not None:
                m = replace(m, load_factor=load[0], standby=load[1])
        meters.append(m)
    return replace(firm, meters=tuple(meters))


def _rated(firm: FirmSpec) -> float:
    return sum(m.rated_power for m in _electric(firm))


def _one_shift(firm: FirmSpec) -> bool:
    profile = industry_profile(firm.industry, shift=firm.shift, weekend=firm.weekend)
    return profile.shift is Shift.ONE and profile.weekend is not Weekend.SEVEN_DAYS


def _expect(firm: FirmSpec, *rules: str) -> FirmSpec:
    return replace(firm, expect=tuple(dict.fromkeys((*firm.expect, *rules))))


def _stoppage(firm: FirmSpec, week: date) -> FirmSpec:
    stop = Stoppage(start=_at(week), end=_at(week + timedelta(days=5)))
    return _expect(_with_faults(firm, stop), "suspected_stoppage")


def _cutback(firm: FirmSpec, week: date) -> FirmSpec:
    """Four stopped days: energy under half the usual. Stopped days are all base load, so
    the night share rises too; with standby at 14 % of full load it stays under the idle
    rule's 15 points (more standby and the week is no cutback, less and it is idle load)."""
    first = Stoppage(start=_at(week), end=_at(week + timedelta(days=2)))
    second = Stoppage(start=_at(week + timedelta(days=3)), end=_at(week + timedelta(days=5)))
    return _expect(_with_faults(firm, first, second, load=(0.5, 0.07)), "suspected_cutback")


def _surge(firm: FirmSpec, week: date) -> FirmSpec:
    wednesday = week + timedelta(days=2)
    surge = Surge(start=_at(wednesday), end=_at(wednesday + timedelta(days=1)), factor=1.8)
    return _expect(_with_faults(firm, surge, load=(0.45, 0.07)), "energy_surge")


def _idle(firm: FirmSpec, week: date) -> FirmSpec:
    night = NightLoad(start=_at(week), end=_at(week + timedelta(days=7)), level=0.8)
    return _expect(_with_faults(firm, night), "idle_load")


def _baseline(firm: FirmSpec, week: date) -> FirmSpec:
    assert firm.output is not None
    dip = OutputAdjust(month=judged_month(week), factor=0.7)
    output = replace(firm.output, adjust=(*firm.output.adjust, dip))
    return _expect(replace(firm, output=output), "baseline_excess")


def _intensity(firm: FirmSpec, week: date) -> FirmSpec:
    assert firm.output is not None
    output = replace(firm.output, kwh_per_10k_yuan=firm.output.kwh_per_10k_yuan * _INTENSITY_FACTOR)
    return _expect(replace(firm, output=output), "intensity_peers")


def _two_high(firm: FirmSpec, week: date) -> FirmSpec:
    meters = _electric(firm)
    scale = TWO_HIGH_KW / _rated(firm)
    bigger = {m.code: replace(m, rated_power=round(m.rated_power * scale, 1), load_factor=0.6)
              for m in meters}  # fmt: skip
    since = date(week.year - 1, 1, 1)
    return _expect(
        replace(
            firm,
            shift=Shift.THREE,
            weekend=Weekend.SEVEN_DAYS,
            above_scale=True,
            meters=tuple(bigger.get(m.code, m) for m in firm.meters),
            projects=(ProjectSpec(name="印染生产线技改项目", year=2019, design_tce=2600.0),),
            lists=(ListSpec(list="high_energy", since=since),),
            tags=("high-energy", "two-high"),
        ),
        "two_high",
        "monitored_list",
    )


def _listed(firm: FirmSpec, week: date) -> FirmSpec:
    since = date(week.year - 1, 1, 1)
    listed = replace(firm, lists=(ListSpec(list="unrectified_d", since=since),), tags=("d-class",))
    return _expect(listed, "monitored_list")


def _d_two_years(firm: FirmSpec, week: date) -> FirmSpec:
    years = (week.year - 2, week.year - 1)
    classes = tuple(ClassSpec(year=y, class_="D") for y in years)
    lists = (ListSpec(list="d_class", since=date(week.year - 1, 4, 1)),)
    d = replace(firm, classes=classes, lists=lists, tags=("d-class",))
    return _expect(d, "d_class_two_years", "monitored_list")


def _offline(firm: FirmSpec, week: date) -> FirmSpec:
    meters = list(firm.meters)
    index = next(i for i, m in enumerate(meters) if m.protocol in ("modbus", "dlt645"))
    dead = NoAnswer(start=_at(week + timedelta(days=3), 10))
    meters[index] = replace(meters[index], faults=(dead,))
    return _expect(replace(firm, meters=tuple(meters)), "terminal_offline", "data_incomplete")


Plan = Callable[[FirmSpec, date], FirmSpec]
_PLANS: Final[dict[str, tuple[Plan, Callable[[FirmSpec], bool]]]] = {
    "two_high": (_two_high, lambda f: bool(_electric(f))),
    "intensity_peers": (_intensity, lambda f: f.output is not None),
    "suspected_stoppage": (_stoppage, _one_shift),
    "suspected_cutback": (_cutback, _one_shift),
    "energy_surge": (_surge, _one_shift),
    "idle_load": (_idle, _one_shift),
    "baseline_excess": (_baseline, lambda f: f.output is not None),
    "terminal_offline": (
        _offline,
        lambda f: any(m.protocol in ("modbus", "dlt645") and not m.faults for m in f.meters),
    ),
    "monitored_list": (_listed, lambda f: True),
    "d_class_two_years": (_d_two_years, lambda f: True),
}


def _host(rng: random.Random, firms: list[FirmSpec], taken: set[int], rule: str) -> int | None:
    fits = _PLANS[rule][1]
    free = [i for i, f in enumerate(firms) if i not in taken and fits(f)]
    if rule == "intensity_peers":  # among peers: the biggest division
        divisions = Counter(f.industry[:3] for f in firms)
        division, size = divisions.most_common(1)[0] if divisions else ("", 0)
        free = [i for i in free if firms[i].industry[:3] == division] if size >= _MIN_PEERS else []
    if rule == "two_high":  # the biggest line, preferably a dyeing or plating one
        heavy = [i for i in free if firms[i].industry in ("C1713", "C3360", "C3825")] or free
        return max(heavy, key=lambda i: _rated(firms[i]), default=None)
    return rng.choice(free) if free else None


def plant(
    rng: random.Random, firms: list[FirmSpec], *, week: date, copies: int = 1
) -> list[FirmSpec]:
    """``firms`` with ``copies`` hosts per rule of `PLANTED` built for the week starting
    Monday ``week`` (rules without a fitting host are left out)."""
    out, taken = list(firms), set[int]()
    for rule in PLANTED:
        for _ in range(copies if rule != "two_high" else 1):
            index = _host(rng, out, taken, rule)
            if index is None:
                continue
            taken.add(index)
            out[index] = _PLANS[rule][0](out[index], week)
    return out

"""Industries of the simulated city: GB/T 4754-2017 codes, how they work, how common they are.

The list follows the "4+X" key industries and Yiwu's traditional small-commodity trades
(domain.md). Codes were picked from memory of GB/T 4754-2017 and are plausible, not
checked against the standard's text: each is marked (unconfirmed) and all are data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final


class Shift(enum.StrEnum):
    """Working-day pattern: 8-17 with a lunch break, 8-24, or around the clock."""

    ONE = "one"
    TWO = "two"
    THREE = "three"


class Weekend(enum.StrEnum):
    """Sunday off; Saturday half a day and Sunday off; or seven working days."""

    SUNDAY_OFF = "sunday_off"
    SATURDAY_HALF = "saturday_half"
    SEVEN_DAYS = "seven_days"


@dataclass(frozen=True, slots=True)
class IndustryProfile:
    """How firms of one industry load their meters, plus hints for the city generator.

    ``idle`` is the activity (fraction of full production) outside shifts and on days off;
    ``festival_level`` the activity during the Spring Festival shutdown (0: standby only);
    ``summer_boost`` the extra load at the late-July cooling peak; ``growth`` the yearly
    load growth. ``weight`` is the relative frequency in the city, ``kw_per_mu`` the rated
    load per mu of land, ``water``/``gas`` the chance that a firm has such a meter.
    ``kwh_per_10k_yuan`` is the typical electricity per 10k yuan of output value and
    ``value_added_share`` / ``emissions_t_per_10k_yuan`` the typical value added and
    pollutant emissions per output (simulated monthly figures, `simulators.firm_data`).
    They are plausible orders of magnitude, not statistics, and the same within a GB/T
    4754 division (the peer group of the intensity rule at its default depth).

    Example: ``industry_profile("C2438").shift`` is ``Shift.ONE``.
    """

    code: str
    name: str
    label: str  # the trade as it appears in a Chinese firm name
    shift: Shift
    weekend: Weekend
    idle: float = 0.12
    festival_level: float = 0.0
    summer_boost: float = 0.12
    growth: float = 0.03
    weight: float = 1.0
    kw_per_mu: float = 25.0
    water: float = 0.2
    gas: float = 0.1
    kwh_per_10k_yuan: float = 300.0
    value_added_share: float = 0.22
    emissions_t_per_10k_yuan: float = 0.002


_1, _2, _3 = Shift.ONE, Shift.TWO, Shift.THREE
_SUN, _SAT, _ALL = Weekend.SUNDAY_OFF, Weekend.SATURDAY_HALF, Weekend.SEVEN_DAYS
_P = IndustryProfile

#: Known industries by GB/T 4754 class code; every code is (unconfirmed).
INDUSTRIES: Final[dict[str, IndustryProfile]] = {
    p.code: p
    for p in (
        # traditional small commodities
        _P("C1713", "cotton printing and dyeing", "印染", _3, _ALL, idle=0.3, weight=2,
           kw_per_mu=80, water=1.0, gas=0.9, summer_boost=0.08, kwh_per_10k_yuan=700,
           emissions_t_per_10k_yuan=0.012),
        _P("C1761", "knitted fabric weaving", "针织", _3, _SAT, idle=0.2, weight=6, kw_per_mu=35,
           kwh_per_10k_yuan=700, emissions_t_per_10k_yuan=0.004),
        _P("C1763", "knitted goods (socks, gloves)", "袜业", _2, _SAT, weight=8, kw_per_mu=30,
           kwh_per_10k_yuan=700, emissions_t_per_10k_yuan=0.003),
        _P("C1820", "knitted garments", "服饰", _1, _SUN, weight=8, kw_per_mu=15,
           kwh_per_10k_yuan=150, value_added_share=0.25),
        _P("C2438", "jewellery and accessories", "饰品", _1, _SUN, weight=10, kw_per_mu=18,
           gas=0.2, kwh_per_10k_yuan=200, emissions_t_per_10k_yuan=0.003),
        _P("C2682", "cosmetics", "化妆品", _1, _SAT, weight=4, kw_per_mu=22, water=0.8, gas=0.5,
           kwh_per_10k_yuan=250, value_added_share=0.3),
        _P("C3360", "electroplating", "电镀", _2, _SUN, idle=0.25, weight=3, kw_per_mu=70,
           water=1.0, gas=0.3, kwh_per_10k_yuan=900, emissions_t_per_10k_yuan=0.015),
        _P("C3525", "moulds", "模具", _2, _SUN, weight=4, kw_per_mu=40, kwh_per_10k_yuan=350),
        _P("C2452", "plastic toys", "玩具", _1, _SUN, weight=5, kw_per_mu=20, kwh_per_10k_yuan=200),
        _P("C2929", "plastic products", "塑料制品", _2, _SUN, weight=6, kw_per_mu=35,
           kwh_per_10k_yuan=450),
        # "4+X": optoelectronics, new-energy vehicles, chips and smart terminals, health
        _P("C3825", "photovoltaic cells and modules", "光伏", _3, _ALL, idle=0.5,
           festival_level=0.6, weight=2, kw_per_mu=120, water=0.9, summer_boost=0.1,
           kwh_per_10k_yuan=500),
        _P("C3974", "display devices", "光电", _3, _ALL, idle=0.5, festival_level=0.7, weight=1,
           kw_per_mu=110, water=0.9, gas=0.4, kwh_per_10k_yuan=400),
        _P("C3973", "integrated circuits", "芯片", _3, _ALL, idle=0.6, festival_level=0.8,
           weight=1, kw_per_mu=150, water=1.0, gas=0.5, kwh_per_10k_yuan=400,
           value_added_share=0.35),
        _P("C3922", "smart terminals", "智能科技", _2, _SAT, weight=2, kw_per_mu=30,
           kwh_per_10k_yuan=400),
        _P("C3612", "new-energy vehicles", "新能源汽车", _2, _SAT, weight=1, kw_per_mu=60,
           water=0.6, gas=0.6, kwh_per_10k_yuan=300),
        _P("C3670", "auto parts", "汽车配件", _2, _SAT, weight=3, kw_per_mu=45, gas=0.3,
           kwh_per_10k_yuan=300),
        _P("C2770", "medical and health supplies", "医疗用品", _2, _SAT, weight=2, kw_per_mu=30,
           water=0.6, gas=0.3, kwh_per_10k_yuan=250),
    )
}  # fmt: skip

#: The seed's industries (domain.md): knitting and garments, jewellery, photovoltaics and
#: optoelectronics, auto parts, cosmetics, moulds, printing and dyeing, electroplating.
SEED_INDUSTRIES: Final = (
    *("C1713", "C1761", "C1763", "C1820", "C2438", "C3825", "C3974"),
    *("C3670", "C2682", "C3525", "C3360"),
)

#: Used for codes that match no entry, not even by division (first three characters).
DEFAULT_PROFILE: Final = IndustryProfile(
    "C", "other manufacturing", "实业", Shift.ONE, Weekend.SUNDAY_OFF, weight=0.0
)


def industry_profile(
    code: str, *, shift: Shift | None = None, weekend: Weekend | None = None
) -> IndustryProfile:
    """The profile for GB/T 4754 ``code`` (exact, else same division, else the default),
    carrying ``code`` itself and the firm's own ``shift``/``weekend`` when given."""
    found = INDUSTRIES.get(code)
    if found is None:
        division = [p for p in INDUSTRIES.values() if p.code[:3] == code[:3]]
        found = division[0] if division else DEFAULT_PROFILE
    return replace(found, code=code, shift=shift or found.shift, weekend=weekend or found.weekend)

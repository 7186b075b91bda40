"""What a simulated firm reports besides its meters: monthly output figures, list
memberships, projects and official evaluation classes (tables ``[firms.output]``,
``[[firms.lists]]``, ``[[firms.projects]]``, ``[[firms.classes]]`` of the city file).

Output figures follow the firm's simulated electricity: a month's output value is what its
metered kWh would buy at the firm's intensity, ``kWh = base_kwh + kwh_per_10k_yuan x
output / 10,000``, with a little deterministic noise (`simulators.figures` computes them).
An ``adjust`` scales one month's reported output (energy not following output).

Example (TOML)::

    [firms.output]
    kwh_per_10k_yuan = 180.0        # marginal electricity per 10k yuan of output value
    base_kwh = 12000.0              # kWh a month that does not follow output
    employees = 85
    [[firms.output.adjust]]
    month = 2026-10-01
    factor = 0.7

    [[firms.lists]]
    list = "high_energy"            # d_class | unrectified_d | high_energy | land_reclaim
    since = 2025-01-01

    [[firms.projects]]
    name = "二期印染生产线"
    year = 2019
    design_tce = 1800.0             # optional

    [[firms.classes]]               # official per-mu evaluation class of a year
    year = 2025
    class = "D"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from simulators.errors import CityConfigError

#: The lists of table ``firm_lists`` (migration 0007).
LISTS: Final = ("d_class", "unrectified_d", "high_energy", "land_reclaim")
CLASSES: Final = ("A", "B", "C", "D")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputAdjust:
    """The reported output of ``month`` (its first day) is ``factor`` x what energy implies."""

    month: date
    factor: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """How a firm's monthly figures follow its energy; shares are of output value except
    ``rnd_share`` (of main revenue). ``noise`` is the amplitude of the month-to-month
    scatter of output around what energy implies."""

    kwh_per_10k_yuan: float
    base_kwh: float = 0.0
    noise: float = 0.03
    value_added_share: float = 0.22
    tax_share: float = 0.03
    revenue_share: float = 1.02  # main business revenue / output value
    rnd_share: float = 0.02
    employees: int = 50
    emissions_t_per_10k_yuan: float = 0.002
    adjust: tuple[OutputAdjust, ...] = ()

    def factor(self, month: date) -> float:
        """The reported share of ``month``'s energy-implied output (1.0 unless adjusted)."""
        out = 1.0
        for a in self.adjust:
            if a.month == month:
                out *= a.factor
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSpec:
    list: str
    since: date
    until: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectSpec:
    name: str
    year: int
    design_tce: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassSpec:
    """An official per-mu evaluation class; ``class_`` is ``class`` in the city file."""

    year: int
    class_: str


def check_firm_data(
    where: str,
    output: OutputSpec | None,
    lists: tuple[ListSpec, ...],
    projects: tuple[ProjectSpec, ...],
    classes: tuple[ClassSpec, ...],
) -> None:
    """Raise `CityConfigError` naming ``where`` for a value the tables would refuse."""
    if output is not None:
        o = output
        if not (o.kwh_per_10k_yuan > 0 and o.base_kwh >= 0 and 0 <= o.noise < 0.5):
            raise CityConfigError(f"{where}: output needs kwh_per_10k_yuan > 0, base_kwh >= 0")
        shares = (o.value_added_share, o.tax_share, o.revenue_share, o.rnd_share)
        if min(shares) < 0 or o.employees < 0 or o.emissions_t_per_10k_yuan < 0:
            raise CityConfigError(f"{where}: output shares and counts must not be negative")
        if any(a.month.day != 1 or not 0 <= a.factor <= 10 for a in o.adjust):
            raise CityConfigError(f"{where}: output.adjust needs a month's first day, 0-10")
    for item in lists:
        if item.list not in LISTS or (item.until is not None and item.until <= item.since):
            raise CityConfigError(f"{where}: list {item.list!r} not in {LISTS} or until <= since")
    for project in projects:
        if not project.name or not 1950 <= project.year <= 2100:
            raise CityConfigError(f"{where}: a project needs a name and a year 1950-2100")
        if project.design_tce is not None and project.design_tce < 0:
            raise CityConfigError(f"{where}: design_tce must not be negative")
    years = [c.year for c in classes]
    if any(c.class_ not in CLASSES for c in classes) or len(set(years)) != len(years):
        raise CityConfigError(f"{where}: classes are one of {CLASSES}, one per year")

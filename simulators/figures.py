"""Monthly output figures of simulated firms, following their simulated electricity; pure.

A firm's month: its electricity meters' energy (`LoadProfile.day_energy`, primary side,
summed over the local days each meter is in service), then ``output = (kWh - base_kwh) /
kwh_per_10k_yuan x 10,000`` yuan, scattered by ``noise`` (a deterministic draw per firm
and month) and scaled by any ``adjust`` of the month. The other figures are shares of it.
So the ISO 50006 baseline of a plain firm (kWh regressed on output) fits well, and a month
whose reported output falls while energy does not stands out.

Example::

    book = DailyEnergy.of(CityFleet(city).meters, first=first, end=end)
    for figure in output_figures(city, book, months=month_range(first, last)):
        print(figure.credit_code, figure.month, figure.output_value)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from meterhub.reading import LOCAL_TZ, Utility
from simulators.config import CityConfig, FirmSpec
from simulators.faults import derive_key
from simulators.meter import SimulatedMeter
from simulators.profile import split_time

_EPOCH = date(1970, 1, 1).toordinal()


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_range(first: date, last: date) -> list[date]:
    """First days of the months from ``first``'s through ``last``'s, inclusive."""
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = next_month(month)
    return out


def day_number(day: date) -> int:
    """The local day number `LoadProfile` uses for calendar ``day``."""
    return day.toordinal() - _EPOCH


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def in_service(meter: SimulatedMeter, day: date) -> bool:
    """Whether the metering point ``meter`` (its first installation and any that replace
    it) measures all of local day ``day``."""
    first, last = meter.installations[0], meter.installations[-1]
    start = local_midnight(day)
    end = start + timedelta(days=1)
    return first.installed_at <= start and (last.removed_at is None or end <= last.removed_at)


@dataclass(frozen=True, slots=True)
class DailyEnergy:
    """Each meter's energy per local day from ``first`` on (None: not in service all day),
    keyed by the meter's id in the city file. Example::

        book = DailyEnergy.of(fleet.meters, first=date(2024, 9, 1), end=date(2026, 12, 1))
        book.month([1, 2], date(2025, 3, 1))  # kWh of meters 1 and 2 in March 2025
    """

    first: date
    end: date
    days: dict[int, list[float | None]]

    @classmethod
    def of(
        cls,
        meters: Iterable[SimulatedMeter],
        *,
        first: date,
        end: date,
        progress: Callable[[int], None] | None = None,
    ) -> DailyEnergy:
        """The book of ``meters`` for the days in [first, end); ``progress`` is called
        after each meter."""
        span = [first + timedelta(days=i) for i in range((end - first).days)]
        days: dict[int, list[float | None]] = {}
        for meter in meters:
            days[meter.spec.id] = [
                meter.load.day_energy(day_number(d)) if in_service(meter, d) else None for d in span
            ]
            if progress is not None:
                progress(1)
        return cls(first, end, days)

    def on(self, meter_id: int, day: date) -> float | None:
        index = (day - self.first).days
        values = self.days[meter_id]
        return values[index] if 0 <= index < len(values) else None

    def month(self, meter_ids: Iterable[int], month: date) -> float:
        """The summed energy of the meters over the days of ``month`` in the book."""
        lo = max(0, (month - self.first).days)
        hi = min((self.end - self.first).days, (next_month(month) - self.first).days)
        return sum(v for i in meter_ids for v in self.days[i][lo:hi] if v is not None)


@dataclass(frozen=True, slots=True)
class Figure:
    """One firm's month as the bureau imports it (yuan, tonnes, people)."""

    credit_code: str
    month: date
    output_value: Decimal
    value_added: Decimal
    tax_paid: Decimal
    employees: int
    rnd_spend: Decimal
    main_revenue: Decimal
    emissions_t: Decimal


def _scatter(seed: int, firm: FirmSpec, month: date) -> float:
    """A deterministic number in [-1, 1) for the firm's month."""
    key = derive_key(seed, f"output:{firm.credit_code}:{month.isoformat()}")
    return key / 2.0**63 - 1.0


def _yuan(value: float) -> Decimal:
    return Decimal(round(value)).quantize(Decimal("1"))


def firm_figure(seed: int, firm: FirmSpec, month: date, kwh: float) -> Figure | None:
    """The firm's figures for ``month`` given its electricity ``kwh`` (None without an
    ``output`` spec or energy)."""
    spec = firm.output
    if spec is None or kwh <= 0:
        return None
    implied = max(0.0, kwh - spec.base_kwh) / spec.kwh_per_10k_yuan * 10_000
    output = implied * (1 + spec.noise * _scatter(seed, firm, month)) * spec.factor(month)
    revenue = output * spec.revenue_share
    return Figure(
        credit_code=firm.credit_code,
        month=month,
        output_value=_yuan(output),
        value_added=_yuan(output * spec.value_added_share),
        tax_paid=_yuan(output * spec.tax_share),
        employees=spec.employees,
        rnd_spend=_yuan(revenue * spec.rnd_share),
        main_revenue=_yuan(revenue),
        emissions_t=Decimal(round(output / 10_000 * spec.emissions_t_per_10k_yuan, 3)),
    )


def output_figures(
    city: CityConfig, book: DailyEnergy, *, months: Sequence[date]
) -> Iterator[Figure]:
    """Every firm's figures over ``months`` from the electricity in ``book``, firm by firm
    (firms without an ``output`` spec and months without electricity are left out)."""
    for firm in city.firms:
        if firm.output is None:
            continue
        ids = [m.id for m in firm.meters if m.utility is Utility.ELECTRICITY and m.id in book.days]
        for month in months:
            kwh = book.month(ids, month)
            figure = firm_figure(city.seed, firm, month, kwh)
            if figure is not None:
                yield figure


def local_day(ts: datetime) -> date:
    """The local calendar day of aware ``ts``."""
    return date.fromordinal(split_time(ts)[0] + _EPOCH)

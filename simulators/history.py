"""The older history of a simulated city, written as the daily and monthly rollups the
interval worker would have kept, not as readings.

Two years of 15-minute readings for a few hundred meters are tens of millions of intervals,
more than a demo machine derives in reasonable time, while the monthly rules (ISO 50006
baseline, intensity year on year, two-high) read only monthly rollups and the load rules
only the last weeks' daily features. So the demo fast-forwards the last weeks through the
protocol paths (`simulators.backfill`) and, before them, writes per meter and local day
its energy (`LoadProfile.day_energy`, the same load model without the 5-minute noise) with
96 intervals, and the months summed from those days; firm rollups are summed from the
meters', town rollups from the firms'. Hourly rollups and daily features are left to the
protocol paths.

Run it before the protocol-path backfill that starts at ``until``: the month holding
``until`` is summed from these days plus any day rollups already stored from ``until``
on, and the interval worker re-sums it again as the later readings arrive. When the last
months of electricity come as readings through the grid company's export instead
(`simulators.history_export`, `meterhub import readings`), ``readings_from`` ends the
electricity meters' rollups where those readings start (water and gas go on to ``until``),
so that no day is counted twice.

Example::

    written = await write_history(conn, city, fleet.meters, first=date(2024, 9, 1),
                                  until=local_midnight(date(2026, 10, 7)))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from ingest.features import refresh_features_for
from ingest.town_rollups import refresh_town_rollups_for
from meterhub.reading import Utility
from simulators.config import CityConfig
from simulators.figures import DailyEnergy, local_day, local_midnight, month_range, next_month
from simulators.firm_registry import FirmDataSummary, register_firm_data
from simulators.meter import SimulatedMeter
from simulators.registry import meter_ids

#: Intervals of a whole local day on the 15-minute grid.
DAY_INTERVALS = 96
_METER_COLUMNS = ["granularity", "meter_id", "bucket", "energy", "estimated", "intervals"]
_FIRM_COLUMNS = ["granularity", "firm_id", "utility", "bucket", "energy", "estimated", "meters"]
#: A meter rollup row in `_METER_COLUMNS` order.
Row = tuple[str, int, datetime, float, float, int]


@dataclass(slots=True)
class HistorySummary:
    meters: int = 0
    days: int = 0  # meter-days written
    months: int = 0  # meter-months written


async def _firm_ids(conn: asyncpg.Connection, city: CityConfig) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT credit_code, id FROM firms WHERE credit_code = ANY($1::text[])",
        [f.credit_code for f in city.firms],
    )
    return {r["credit_code"]: int(r["id"]) for r in rows}


async def write_history(
    conn: asyncpg.Connection,
    city: CityConfig,
    meters: Sequence[SimulatedMeter],
    *,
    first: date,
    until: datetime,
    book: DailyEnergy | None = None,
) -> HistorySummary:
    """Replace the day and month rollups of the city's registered ``meters`` (and their
    firms) for the local days from ``first`` to the day before ``until`` (a local
    midnight), in one transaction. ``book`` may hold the daily energies already."""
    boundary = local_day(until)
    if local_midnight(boundary) != until:
        raise ValueError(f"until must be a local midnight, got {until.isoformat()}")
    book = book or DailyEnergy.of(meters, first=first, end=boundary)
    ids = await meter_ids(conn, [i.code for m in meters for i in m.installations])
    firms = await _firm_ids(conn, city)
    summary = HistorySummary()
    day_rows: list[Row] = []
    month_sum: dict[tuple[int, date], float] = defaultdict(float)
    month_n: dict[tuple[int, date], int] = defaultdict(int)
    owner: dict[int, tuple[int, str]] = {}
    for meter in meters:
        firm_id = firms.get(meter.firm.credit_code)
        if firm_id is None:
            continue
        summary.meters += 1
        day = first
        while day < boundary:
            energy = book.on(meter.spec.id, day)
            # A day goes to the physical meter in place at its start (after a replacement,
            # the new one): the swap day's share of the old one is not split off.
            meter_id = None
            if energy is not None:
                meter_id = ids.get(meter.installation_at(local_midnight(day)).code)
            if energy is not None and meter_id is not None:
                owner[meter_id] = (firm_id, meter.spec.utility.value)
                day_rows.append(("day", meter_id, local_midnight(day), energy, 0.0, DAY_INTERVALS))
                month_sum[meter_id, day.replace(day=1)] += energy
                month_n[meter_id, day.replace(day=1)] += DAY_INTERVALS
                summary.days += 1
            day += timedelta(days=1)
    last_month = boundary.replace(day=1)
    async with conn.transaction():
        later = await conn.fetch(  # day rollups already stored in the boundary's month
            "SELECT meter_id, sum(energy) AS energy, sum(intervals) AS intervals "
            "FROM meter_rollups WHERE granularity = 'day' AND meter_id = ANY($1::bigint[]) "
            "AND bucket >= $2 AND bucket < $3 GROUP BY 1",
            list(owner),
            until,
            local_midnight(next_month(last_month)),
        )
        for row in later:
            month_sum[row["meter_id"], last_month] += row["energy"]
            month_n[row["meter_id"], last_month] += row["intervals"]
        month_rows: list[Row] = [
            ("month", meter_id, local_midnight(month), energy, 0.0, month_n[meter_id, month])
            for (meter_id, month), energy in month_sum.items()
        ]
        summary.months = len(month_rows)
        await _replace(
            conn,
            owner,
            first=local_midnight(first),
            until=until,
            months_end=local_midnight(next_month(last_month)),
            meter_rows=day_rows + month_rows,
        )
    return summary


async def _replace(
    conn: asyncpg.Connection,
    owner: dict[int, tuple[int, str]],
    *,
    first: datetime,
    until: datetime,
    months_end: datetime,
    meter_rows: list[Row],
) -> None:
    meters = list(owner)
    firms = sorted({f for f, _ in owner.values()})
    utilities = sorted({u for _, u in owner.values()})
    for table, key, keys in (
        ("meter_rollups", "meter_id", meters),
        ("firm_rollups", "firm_id", firms),
    ):
        only = " AND utility = ANY($6::text[])" if table == "firm_rollups" else ""
        await conn.execute(
            f"DELETE FROM {table} WHERE {key} = ANY($1::bigint[]){only} AND ("
            "(granularity = 'day' AND bucket >= $2 AND bucket < $3) OR "
            "(granularity = 'month' AND bucket >= $4 AND bucket < $5))",
            keys,
            first,
            until,
            local_midnight(local_day(first).replace(day=1)),
            months_end,
            *([utilities] if only else []),
        )
    await conn.copy_records_to_table("meter_rollups", records=meter_rows, columns=_METER_COLUMNS)
    firm_sum: dict[tuple[str, int, str, datetime], float] = defaultdict(float)
    firm_meters: dict[tuple[str, int, str, datetime], int] = defaultdict(int)
    for granularity, meter_id, bucket, energy, _, _ in meter_rows:
        firm_id, utility = owner[meter_id]
        firm_sum[granularity, firm_id, utility, bucket] += energy
        firm_meters[granularity, firm_id, utility, bucket] += 1
    firm_rows = [(*key, energy, 0.0, firm_meters[key]) for key, energy in firm_sum.items()]
    await conn.copy_records_to_table("firm_rollups", records=firm_rows, columns=_FIRM_COLUMNS)
    month_start = local_midnight(local_day(first).replace(day=1))
    kinds = sorted(set(owner.values()))
    await refresh_town_rollups_for(
        conn,
        [("month", firm, utility, month_start, months_end) for firm, utility in kinds]
        + [("day", firm, utility, first, until) for firm, utility in kinds],
    )
    # The weekly rules read the month (and day) features the interval worker keeps: refresh
    # them for what was written here, as a derivation pass would.
    if "electricity" not in utilities:
        return
    await refresh_features_for(
        conn,
        [("month", firm, "electricity", month_start, months_end) for firm in firms]
        + [("day", firm, "electricity", first, until) for firm in firms],
    )


@dataclass(slots=True)
class FastForward:
    """What `fast_forward` wrote: rollups before ``until`` and figures of ``months``."""

    first: date
    months: list[date]
    history: HistorySummary
    data: FirmDataSummary


def _groups(
    meters: Sequence[SimulatedMeter], *, until: datetime, readings_from: datetime | None
) -> list[tuple[list[SimulatedMeter], datetime]]:
    """The meters whose rollups end at the same time, with that time."""
    if readings_from is None or readings_from == until:
        return [(list(meters), until)]
    power = [m for m in meters if m.spec.utility is Utility.ELECTRICITY]
    others = [m for m in meters if m.spec.utility is not Utility.ELECTRICITY]
    return [(group, last) for group, last in ((power, readings_from), (others, until)) if group]


def history_start(until: datetime, months: int) -> date:
    """The first day of the month ``months`` months before ``until``'s month."""
    month = local_day(until).replace(day=1)
    index = month.year * 12 + month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


async def fast_forward(
    conn: asyncpg.Connection,
    city: CityConfig,
    meters: Sequence[SimulatedMeter],
    *,
    months: int,
    until: datetime,
    now: datetime,
    readings_from: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> FastForward:
    """The rollups of the ``months`` months before ``until`` (`write_history`; the
    electricity meters' only up to ``readings_from`` when given, a local midnight from which
    their readings are imported), and the firms' output figures from then through the last
    whole month before ``now``, with their lists, projects and classes
    (`register_firm_data`). ``progress`` is called after each meter's days are computed."""
    first = history_start(until, months)
    if readings_from is not None and not local_midnight(first) <= readings_from <= until:
        raise ValueError(
            f"readings_from must lie between {first} and {until.isoformat()}, "
            f"got {readings_from.isoformat()}"
        )
    this_month = local_day(now).replace(day=1)
    figure_months = month_range(first, this_month - timedelta(days=1))
    end = max(local_day(until), this_month)
    book = DailyEnergy.of(meters, first=first, end=end, progress=progress)
    history = HistorySummary()
    for group, last in _groups(meters, until=until, readings_from=readings_from):
        part = await write_history(conn, city, group, first=first, until=last, book=book)
        history.meters += part.meters
        history.days += part.days
        history.months += part.months
    data = await register_firm_data(conn, city, book=book, months=figure_months)
    return FastForward(first, figure_months, history, data)

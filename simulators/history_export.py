"""The grid company's export of a simulated city's electricity meters: a CSV of quarter-hour
register readings, for `meterhub import readings`.

Each row is one meter's registers at one tick, as the grid company exports them: the asset
number of the meter installed then (a replacement changes it), the time, total active energy
and its four time-of-use registers, secondary side (`SimulatedMeter.energy_at`: the same
pure function of time the protocol paths read, so a protocol-path backfill starting where the
export ends continues its registers without a jump). Ticks are on the local 15-minute grid,
time by time (as an export cut by day is); no faults besides those in the load and the
registers (stoppages, surges, replacements, rollovers): the grid company's data is complete.

Example::

    done = write_export(fleet.meters, first=date(2025, 10, 1), until=date(2026, 10, 5),
                        path=Path("year.csv.gz"))
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

from meterhub.reading import TARIFFS, Utility
from simulators.figures import day_number, local_midnight
from simulators.meter import SimulatedMeter

#: The export's columns (the grid feed's field names; `meterhub import readings` reads them).
HEADER = ("meter", "ts", "energy", *(f"energy_{t}" for t in TARIFFS))
QUARTER = timedelta(minutes=15)
_TICKS_PER_DAY = 96


@dataclass(frozen=True, slots=True)
class ExportSummary:
    meters: int
    readings: int
    first: datetime
    last: datetime


def electricity(meters: Sequence[SimulatedMeter]) -> list[SimulatedMeter]:
    """The electricity meters among ``meters`` (what the grid company measures)."""
    return [m for m in meters if m.spec.utility is Utility.ELECTRICITY]


@contextmanager
def _text(path: Path) -> Iterator[IO[str]]:
    """``path`` opened for writing text, gzip-compressed (level 1) when it ends in .gz."""
    if path.suffix != ".gz":
        with path.open("w", encoding="utf-8", newline="") as plain:
            yield plain
        return
    with (
        gzip.open(path, "wb", compresslevel=1) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
    ):
        yield text


def _day_rows(meters: Sequence[SimulatedMeter], day: date) -> list[list[object]]:
    """Every meter's row at every quarter-hour of local ``day``, tick by tick."""
    midnight = local_midnight(day)
    stamps = [(midnight + k * QUARTER).isoformat() for k in range(_TICKS_PER_DAY)]
    seconds = [k * QUARTER.total_seconds() for k in range(_TICKS_PER_DAY)]
    number = day_number(day)
    by_tick: list[list[list[object]]] = [[] for _ in range(_TICKS_PER_DAY)]
    for meter in meters:
        codes = [i.code for i in meter.installations]
        reads = meter.registers.read_day(number, seconds)
        offset = _TICKS_PER_DAY - len(reads)  # ticks before installation are left out
        for k, (index, values) in enumerate(reads, start=offset):
            by_tick[k].append([codes[index], stamps[k], *values])
    return [row for tick in by_tick for row in tick]


def write_export(
    meters: Sequence[SimulatedMeter],
    *,
    first: date,
    until: date,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the quarter-hour readings of the electricity ``meters`` for the local days from
    ``first`` to the day before ``until`` (ticks 00:00 to 23:45) to ``path`` (.csv, or
    .csv.gz); ``progress`` is called after each day. Returns what it wrote."""
    chosen = electricity(meters)
    readings, day = 0, first
    with _text(path) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        while day < until:
            rows = _day_rows(chosen, day)
            writer.writerows(rows)
            readings += len(rows)
            day += timedelta(days=1)
            if progress is not None:
                progress(1)
    last = local_midnight(until) - QUARTER
    return ExportSummary(len(chosen), readings, local_midnight(first), last)

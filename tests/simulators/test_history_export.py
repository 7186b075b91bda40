"""The grid company's export of a simulated city's history: written by `meterhub simulate
export-history`, imported by `meterhub import readings`, derived, and continued by the
protocol paths without a jump; the older rollups end where its readings start."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from ingest.sink import IngestSink
from meterhub.reading import Utility
from meterhub.settings import Settings
from simulators.backfill import backfill_polled
from simulators.city_file import write_city
from simulators.figures import day_number, local_day, local_midnight
from simulators.fleet import CityFleet
from simulators.history import fast_forward
from simulators.history_export import HEADER, write_export
from simulators.meter import SimulatedMeter
from simulators.registry import register_city
from simulators.schedule import history_ticks
from tests.simulators.core_builders import at
from tests.simulators.test_runner import NOW, QUARTER, SWAPPED, small_city
from tests.support import derive_all

#: Where the protocol paths take over (the city's start in the demo).
SEAM = at(2026, 5, 4)
#: The first day of the export: `--months 1` before the seam's month.
EXPORT_FROM = at(2026, 4, 1)


def _meterhub(settings: Settings, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MHUB_DATABASE_URL": settings.dsn(),
        "MHUB_SPOOL_DIR": str(tmp / "spool"),
        "COLUMNS": "200",
    }
    meterhub = Path(sys.executable).with_name("meterhub")
    return subprocess.run(
        [str(meterhub), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _electric(fleet: CityFleet) -> list[SimulatedMeter]:
    return [m for m in fleet.meters if m.spec.utility is Utility.ELECTRICITY]


def test_each_row_is_the_registers_the_protocol_paths_read(tmp_path: Path) -> None:
    fleet = CityFleet(small_city())
    path = tmp_path / "swap.csv.gz"
    day = SWAPPED.date()
    done = write_export(fleet.meters, first=day, until=day + timedelta(days=1), path=path)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        rows = list(csv.reader(text))
    assert tuple(rows[0]) == HEADER
    installed = [m for m in _electric(fleet) if m.installations[0].installed_at <= SWAPPED]
    assert done.readings == len(rows) - 1 == 96 * len(installed)
    assert rows[1][1] == "2026-06-01T00:00:00+08:00" and rows[-1][1] == "2026-06-01T23:45:00+08:00"
    by_key = {(r[0], r[1]): [float(v) for v in r[2:]] for r in rows[1:]}
    for meter in installed:
        for k in range(96):
            ts = local_midnight(day) + k * QUARTER
            got = by_key[meter.installation_at(ts).code, ts.isoformat()]
            assert got == list(meter.energy_at(ts).values())
    swapped = next(m for m in installed if len(m.installations) > 1)
    codes = {r[0] for r in rows[1:]}
    assert {i.code for i in swapped.installations} <= codes  # the asset number changes


@pytest.mark.integration
async def test_a_month_exported_imported_and_derived_is_the_load_model_and_meets_the_protocols(
    settings: Settings, db: asyncpg.Connection, sink_settings: Settings, tmp_path: Path
) -> None:
    city = small_city()
    fleet = CityFleet(city)
    ids = (await register_city(db, city, as_of=NOW)).meter_ids
    # The older history as rollups, the electricity's ending where the export starts.
    await fast_forward(
        db, city, fleet.meters, months=2, until=SEAM, now=NOW, readings_from=EXPORT_FROM
    )
    city_file, export = tmp_path / "city.toml", tmp_path / "grid.csv.gz"
    write_city(city, city_file)
    args = ["--months", "1", "--until", SEAM.isoformat(), "--out", str(export)]
    made = _meterhub(settings, tmp_path, "simulate", "export-history", str(city_file), *args)
    assert made.returncode == 0, made.stdout + made.stderr
    electric = [m for m in _electric(fleet) if m.installations[0].installed_at <= EXPORT_FROM]
    readings = 33 * 96 * len(electric)
    assert f"{readings:,}" in made.stdout
    imported = _meterhub(settings, tmp_path, "import", "readings", str(export))
    assert imported.returncode == 0, imported.stderr
    assert f"accepted {readings:,}, duplicates 0, conflicts 0, rejected 0" in imported.stderr
    await derive_all(db)
    # Writing the rollups again (a demo whose marker was lost) leaves the readings' days be.
    await fast_forward(
        db, city, fleet.meters, months=2, until=SEAM, now=NOW, readings_from=EXPORT_FROM
    )
    # Then the protocol paths from the seam on, from the same registers.
    span = timedelta(days=1) + QUARTER  # through the next midnight: the day is whole
    ticks = history_ticks(until=SEAM + span, span=span, interval=QUARTER)
    async with IngestSink(sink_settings) as sink:
        result = await backfill_polled(sink, fleet, ticks, meter_ids=ids, meters=fleet.meters)
    assert result.rejected == []
    await derive_all(db)

    for meter in electric:
        meter_id, multiplier = ids[meter.spec.code], meter.spec.multiplier
        days = await db.fetch(
            "SELECT bucket, energy, sharp, intervals FROM meter_rollups "
            "WHERE meter_id = $1 AND granularity = 'day' ORDER BY bucket",
            meter_id,
        )
        by_day = {r["bucket"]: r for r in days}
        # History rollups (without tariffs) end where the readings start; no day twice.
        assert all(r["sharp"] is None for r in days if r["bucket"] < EXPORT_FROM)
        derived = [r for r in days if r["bucket"] >= EXPORT_FROM]
        assert len(derived) == 34 and all(r["intervals"] == 96 for r in derived)
        assert all(r["sharp"] is not None for r in derived)
        for r in derived:  # each day the load model's exact energy (registers: 0.01 kWh)
            exact = meter.load.day(day_number(local_day(r["bucket"]))).cum[-1]
            assert abs(r["energy"] - exact) <= 0.01 * multiplier + 1e-6, (meter.spec.code, r)
        assert local_midnight(date(2026, 3, 31)) in by_day
        # The seam: the interval from the export's last reading to the protocols' first.
        seam = await db.fetchrow(
            "SELECT energy FROM intervals WHERE meter_id = $1 AND start = $2",
            meter_id,
            SEAM - QUARTER,
        )
        assert seam is not None
        day = meter.load.day(day_number(SEAM.date()) - 1)
        assert abs(seam["energy"] - (day.cum[-1] - day.cum[-4])) <= 0.01 * multiplier + 1e-6
    events = await db.fetch(
        "SELECT meter_id, kind, start FROM interval_events WHERE meter_id = ANY($1::bigint[])",
        list(ids.values()),
    )
    assert events == []
    # The firms' electricity months: March from the rollups, April from the readings.
    for firm in city.firms:
        rows = await db.fetch(
            "SELECT r.bucket, r.energy FROM firm_rollups r JOIN firms f ON f.id = r.firm_id "
            "WHERE f.credit_code = $1 AND r.utility = 'electricity' AND r.granularity = 'month'",
            firm.credit_code,
        )
        months = {r["bucket"]: r["energy"] for r in rows}
        ours = [m for m in electric if m.firm.credit_code == firm.credit_code]
        if not ours:
            continue
        april = sum(
            m.load.day(day_number(date(2026, 4, 1)) + i).cum[-1] for m in ours for i in range(30)
        )
        assert abs(months[EXPORT_FROM] - april) <= 30 * sum(0.01 * m.spec.multiplier for m in ours)
        assert months[at(2026, 3, 1)] > 0
    # Water goes on as rollups to the seam (no readings of it were exported).
    water = next(m for m in fleet.meters if m.spec.utility is Utility.WATER)
    days = await db.fetchval(
        "SELECT count(*) FROM meter_rollups WHERE meter_id = $1 AND granularity = 'day' "
        "AND bucket >= $2 AND bucket < $3",
        ids[water.spec.code],
        EXPORT_FROM,
        SEAM,
    )
    assert days == (SEAM - EXPORT_FROM).days

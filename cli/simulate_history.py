"""`meterhub simulate history | export-history | settle | findings`: what the demo adds to a
simulated city for the weekly analytics: the older history as rollups with the firms' output
figures, the last year as the grid company's export of readings, waiting until a backfill is
stored and derived, and the findings of a week (registered on `cli.simulate.app`;
docs/simulate.md)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import typer

from cli.simulate_support import (
    API,
    CITY,
    api_url,
    backlog_bar,
    console,
    fail,
    findings_by_rule,
    load_fleet,
    progress,
    read_key,
    table,
    time_option,
)
from cli.simulate_support import (
    settle as wait_settled,
)
from meterhub.db import connect
from meterhub.errors import MeterhubError
from meterhub.settings import get_settings
from simulators.figures import local_day, local_midnight
from simulators.fleet import wall_clock
from simulators.history import fast_forward, history_start
from simulators.history_export import write_export


def history(
    city_file: Path = CITY,
    months: int = typer.Option(24, min=1, max=120, help="how many months before --until"),
    until: str | None = typer.Option(
        None, help="the rollups end here, a local midnight (default: the city's start)"
    ),
    readings_from: str | None = typer.Option(
        None,
        help="the electricity meters' rollups end here instead, a local midnight where "
        "their imported readings start (`export-history`); water and gas go on to --until",
    ),
) -> None:
    """The older history without readings: daily and monthly rollups of the months before
    --until from the load model, and the firms' monthly output figures (through the last
    whole month), lists, projects and official classes. Run it before `backfill --since`
    the same time (docs/simulate.md)."""
    (fleet, _), settings = load_fleet(city_file), get_settings()
    city = fleet.city
    if until is None and city.start is None:
        raise fail("the city has no start: give --until")
    end = time_option(until, default=city.start or wall_clock())
    grid_from = None if readings_from is None else time_option(readings_from, default=end)

    async def main() -> None:
        conn = await connect(settings)
        try:
            with progress(len(fleet.meters), f"{months} months of history") as advance:
                done = await fast_forward(
                    conn, city, fleet.meters, months=months, until=end, now=wall_clock(),
                    readings_from=grid_from, progress=advance,
                )  # fmt: skip
        finally:
            await conn.close()
        h, d = done.history, done.data
        until_text = f"{end.date()}"
        if grid_from is not None:
            until_text += f" (electricity to {grid_from.date()})"
        rows = [
            ("rollups", f"{done.first} to {until_text}", f"{h.meters} meters, {h.days} days"),
            ("output figures", f"{done.months[0]} to {done.months[-1]}", d.figures),
            ("lists / projects / classes", "-", f"{d.lists} / {d.projects} / {d.classes}"),
        ]
        console.print(table(("written", "months", "rows"), rows, city.name))

    try:
        asyncio.run(main())
    except (MeterhubError, ValueError) as exc:
        raise fail(str(exc)) from exc


def export_history(
    city_file: Path = CITY,
    out: Path = typer.Option(..., help="the file to write: .csv, or .csv.gz (gzip)"),
    months: int = typer.Option(12, min=1, max=120, help="how many months before --until"),
    until: str | None = typer.Option(
        None,
        help="the export ends before this local midnight (default: the city's start, where "
        "`backfill --since` takes over)",
    ),
) -> None:
    """The grid company's export of the electricity meters' quarter-hour register readings
    (meter, ts, energy and its four tariffs) from the first day of the month --months months
    before --until's up to --until, from the same load model as every protocol path; import
    it with `meterhub import readings FILE` and give `history` --readings-from its first
    day (docs/simulate.md)."""
    (fleet, _) = load_fleet(city_file)
    city = fleet.city
    if until is None and city.start is None:
        raise fail("the city has no start: give --until")
    end = time_option(until, default=city.start or wall_clock())
    boundary = local_day(end)
    if local_midnight(boundary) != end:
        raise fail(f"--until must be a local midnight, got {end.isoformat()}")
    first = history_start(end, months)
    try:
        with progress((boundary - first).days, f"export {first} to {boundary}") as advance:
            done = write_export(
                fleet.meters, first=first, until=boundary, path=out, progress=advance
            )
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc}") from exc
    size = f"{out.stat().st_size / 1e6:,.1f} MB"
    span = f"{done.first.isoformat()} to {done.last.isoformat()}"
    row = (done.meters, f"{done.readings:,}", span, size)
    console.print(table(("meters", "readings", "ticks", "file"), [row], f"{out}"))
    console.print(f"import it with: meterhub import readings {out}")


def findings(
    api: str | None = API,
    key_file: Path = typer.Option(..., help="a file holding a bureau (or town) API key"),
    week: str | None = typer.Option(
        None, help="the week's Monday, e.g. 2026-11-23 (default: the last whole week)"
    ),
) -> None:
    """How many findings of each rule were open during a week, with one example each,
    read from the API (GET /v1/findings): what the demo prints after its weekly runs."""
    settings = get_settings()
    today = wall_clock().date()
    monday = today - timedelta(days=today.weekday(), weeks=1)
    if week is not None:
        monday = time_option(week, default=wall_clock()).date()
    key = read_key(key_file)
    by_rule = findings_by_rule(api_url(api, settings), key, week=monday)
    rows = [
        (rule, len(items), f"{items[0]['firm']} ({items[0]['town']}): {items[0]['text']}")
        for rule, items in sorted(by_rule.items())
    ]
    console.print(
        table(("rule", "firms", "example"), rows, f"findings open in the week of {monday}")
    )
    for rule, items in sorted(by_rule.items()):
        console.print(f"  {rule}: {items[0]['text_en']}")


def settle(
    quiet: float = typer.Option(8.0, min=1, help="seconds without a new row"),
    timeout: float = typer.Option(900.0, min=1, help="give up after this many seconds"),
) -> None:
    """Wait until a backfill or an import is stored and derived (MQTT queue drained, no
    interval work pending, shown as a bar): run it before judging the weeks it wrote."""

    async def main() -> bool:
        conn = await connect(get_settings())
        try:
            with backlog_bar("interval work pending (marks)") as left:
                return await wait_settled(conn, quiet=quiet, timeout=timeout, backlog=left)
        finally:
            await conn.close()

    try:
        done = asyncio.run(main())
    except MeterhubError as exc:
        raise fail(str(exc)) from exc
    if not done:
        raise fail(f"still storing or deriving after {timeout:.0f} s")
    console.print("stored and derived")

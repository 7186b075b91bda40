"""`meterhub simulate …`: a simulated city for commissioning, demos and tests (docs/simulate.md)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import typer
from rich.table import Table

from cli import simulate_history
from cli.runner import run_until_signalled
from cli.simulate_support import (
    API,
    CITY,
    api_url,
    console,
    fail,
    load_fleet,
    progress,
    read_grid_key,
    table,
    time_option,
)
from collectors.scheduler import ScheduleOptions
from collectors.terminals import TerminalBook
from ingest.sink import IngestSink
from meterhub.db import connect
from meterhub.errors import MeterhubError
from meterhub.logs import configure_logging
from meterhub.settings import get_settings
from registry.keys import Role, create_key
from simulators.backfill import backfill_feed, backfill_mqtt, backfill_polled, expected_readings
from simulators.broker_users import create_broker_users, mqtt_gateways
from simulators.city import generate_city
from simulators.city_file import write_city
from simulators.errors import CityConfigError
from simulators.fleet import wall_clock
from simulators.grid_feed import GridFeedClient
from simulators.industry import SEED_INDUSTRIES
from simulators.line_speed import DLT645_BAUD, MODBUS_BAUD
from simulators.meter import SimulatedMeter
from simulators.mqtt_publisher import broker_url
from simulators.registry import RegistrySummary, meter_ids, register_city
from simulators.runner import ALL_PROTOCOLS, CityRunner, FeedTarget
from simulators.schedule import history_ticks

app = typer.Typer(
    help="Simulated meters, gateways and grid feed: make a city, register it, run it "
    "(`run --line-speed`: polled meters at RS-485 line speed, DL/T 645 at 2400 and Modbus RTU "
    "at 9600 baud), or fast-forward weeks of its history (docs/simulate.md).",
    no_args_is_help=True,
)
GRID_KEY = typer.Option(None, help="a grid API key of the feed (see `register --grid-key-out`)")
GRID_KEY_FILE = typer.Option(None, help="read the grid key from this file instead")
FEED = typer.Option(None, help="the grid feed (default: the city's only one)")
MQTT_URL = typer.Option(None, help="the broker, mqtt://host:port (default: MHUB_MQTT_URL's)")


@app.command("city")
def make_city(
    firms: int = typer.Option(..., min=0, help="how many firms"),
    seed: int = typer.Option(..., help="every value derives from it (with --start)"),
    out: Path = typer.Option(..., help="the city file to write"),
    fault_rate: float = typer.Option(0.05, min=0, max=1, help="share of meters with a fault"),
    start: str | None = typer.Option(
        None,
        help="nominal start (ISO 8601): meters are installed 60-120 days before it, faults "
        "fall in the 50 days after it; default: the Monday 8 weeks ago",
    ),
    bus_size: int = typer.Option(16, min=1, max=247, help="meters per Modbus/DL/T 645 gateway"),
    host: str = typer.Option("127.0.0.1", help="where bus gateways listen (and collectors go)"),
    modbus_port: int = typer.Option(15020, help="first Modbus gateway port (then +1 each)"),
    dlt645_port: int = typer.Option(16020, help="first DL/T 645 gateway port (then +1 each)"),
    industries: str = typer.Option(
        "all", help="all: every known industry; seed: the seed's eight (docs/simulate.md)"
    ),
    history_months: int = typer.Option(
        0, min=0, max=120, help="install meters this many months before --start (history)"
    ),
    plant: bool = typer.Option(
        False, "--plant", help="build firms to trigger each weekly rule in the last whole week"
    ),
) -> None:
    """Generate a city file: firms of Yiwu's industries, their meters, gateways and faults."""
    today = wall_clock().replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday(), weeks=8)
    if industries not in ("all", "seed"):
        raise fail(f"--industries is all or seed, not {industries!r}")
    last_week = (today - timedelta(days=today.weekday(), weeks=1)).date()
    try:
        city = generate_city(
            firms=firms,
            seed=seed,
            start=time_option(start, default=monday),
            fault_rate=fault_rate,
            bus_size=bus_size,
            host=host,
            modbus_port=modbus_port,
            dlt645_port=dlt645_port,
            industries=SEED_INDUSTRIES if industries == "seed" else None,
            history_months=history_months,
            plant_week=last_week if plant else None,
        )
    except CityConfigError as exc:
        raise fail(
            f"cannot make the city: {exc} (the Modbus gateways take one port each from "
            f"--modbus-port {modbus_port} up, the DL/T 645 ones from --dlt645-port "
            f"{dlt645_port} up: choose ranges that do not overlap)"
        ) from None
    write_city(city, out)
    rows = []
    for protocol in ("modbus", "dlt645", "mqtt", "grid-feed"):
        meters = [m for _, m in city.meters() if m.protocol == protocol]
        gateways = sum(g.protocol == protocol for g in city.gateways) or "-"
        rows.append((protocol, gateways, len(meters), sum(bool(m.faults) for m in meters)))
    console.print(table(("protocol", "gateways", "meters", "with faults"), rows, city.name))
    if plant:
        planted = Counter(rule for firm in city.firms for rule in firm.expect)
        counts = [(rule, planted[rule]) for rule in sorted(planted)]
        console.print(table(("rule", "firms built for it"), counts, f"planted for {last_week}"))
    console.print(f"wrote {out}; start {city.start.isoformat() if city.start else '-'}")


def _summary(summary: RegistrySummary) -> Table:
    firms = summary.firms
    rows: list[Sequence[object]] = [("firms", firms["added"], firms["changed"], firms["unchanged"])]
    for protocol, n in sorted(summary.meters.items()):
        rows.append((f"meters ({protocol})", n["added"], n["changed"], n["unchanged"], n["later"]))
    return table(("registry", "added", "changed", "unchanged", "installed later"), rows)


@app.command()
def register(
    city_file: Path = CITY,
    as_of: str | None = typer.Option(None, help="register what exists then (default: now)"),
    poll_interval: int = typer.Option(900, min=60, help="the meters' poll interval, seconds"),
    mqtt_users: bool = typer.Option(True, help="create the MQTT gateways' local broker users"),
    grid_key_out: Path | None = typer.Option(
        None, help="create a grid API key for the feed and write it to this file (0600)"
    ),
    feed: str | None = FEED,
) -> None:
    """Put the city's firms and meters into the registry (idempotent upserts), create its
    MQTT gateways' broker users and, with --grid-key-out, a grid API key for its feed."""
    (fleet, feed_id), settings = load_fleet(city_file, feed), get_settings()
    city = fleet.city
    if grid_key_out is not None and feed_id is None:
        raise fail("the city has no grid-feed meters: no feed to make a key for")

    async def run() -> tuple[RegistrySummary, str | None]:
        conn = await connect(settings)
        try:
            when, every = time_option(as_of, default=wall_clock()), timedelta(seconds=poll_interval)
            summary = await register_city(conn, city, as_of=when, poll_interval=every)
            if grid_key_out is None or feed_id is None:
                return summary, None
            name = f"simulated feed {feed_id} ({city.name})"
            return summary, (await create_key(conn, name=name, role=Role.GRID, scope=feed_id)).key
        finally:
            await conn.close()

    users: list[str] = []
    try:
        summary, key = asyncio.run(run())
        if mqtt_users and (gateways := mqtt_gateways(city)):
            with progress(len(gateways), "MQTT broker users") as advance:
                users = create_broker_users(city, settings, progress=lambda _: advance(1))
    except MeterhubError as exc:
        raise fail(str(exc)) from exc
    console.print(_summary(summary))
    for what, items in (("moved from another city's firm", summary.moved),
                        ("of another city at this city's addresses", summary.clashes)):  # fmt: skip
        if items:
            more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
            console.print(f"[yellow]warning:[/] meters {what}: {', '.join(items[:5])}{more}")
    console.print(f"MQTT broker users created or updated: {len(users)}")
    if key is not None and grid_key_out is not None:
        grid_key_out.touch(mode=0o600)
        grid_key_out.chmod(0o600)
        grid_key_out.write_text(key + "\n", encoding="utf-8")
        console.print(f"grid key of feed {feed_id!r} written to {grid_key_out}")


@app.command()
def run(
    city_file: Path = CITY,
    api: str | None = API,
    grid_key: str | None = GRID_KEY,
    grid_key_file: Path | None = GRID_KEY_FILE,
    feed: str | None = FEED,
    mqtt_url: str | None = MQTT_URL,
    mqtt: bool = typer.Option(True, help="run the MQTT gateways"),
    bind: str | None = typer.Option(None, help="listen here instead of each gateway's host"),
    interval: int = typer.Option(900, min=1, help="seconds between MQTT and feed batches"),
    protocol: list[str] = typer.Option(
        [], help="only these: modbus, dlt645, mqtt, grid-feed (repeatable; default all)"
    ),
    line_speed: bool = typer.Option(
        False,
        "--line-speed",
        help="meters answer at RS-485 line speed (--dlt645-baud, --modbus-baud) instead of at once",
    ),
    dlt645_baud: int = typer.Option(
        DLT645_BAUD, min=1, help="DL/T 645 bus speed with --line-speed (8E1)"
    ),
    modbus_baud: int = typer.Option(
        MODBUS_BAUD, min=1, help="Modbus RTU bus speed behind each gateway with --line-speed (8E1)"
    ),
) -> None:
    """Run every gateway of the city until SIGINT/SIGTERM: Modbus TCP and DL/T 645 gateways
    listen, MQTT gateways publish, the grid feed pushes to the API. With --line-speed the
    polled meters answer as on a real RS-485 bus: one request at a time, each frame taking
    its time on the wire at --dlt645-baud / --modbus-baud (docs/simulate.md)."""
    (fleet, feed_id), settings = load_fleet(city_file, feed), get_settings()
    configure_logging(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if bad := sorted(set(protocol) - ALL_PROTOCOLS):
        raise fail(f"unknown protocol {bad}; choose from modbus, dlt645, mqtt, grid-feed")
    protocols = frozenset(p for p in ALL_PROTOCOLS if not protocol or p in protocol)
    key, url = read_grid_key(grid_key, grid_key_file), api_url(api, settings)

    async def main(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            target = None
            if key is not None and feed_id is not None:
                target = FeedTarget(GridFeedClient(http, key=key), url, feed_id)
            runner = CityRunner(
                fleet,
                bind=bind,
                mqtt_url=broker_url(mqtt_url or settings.mqtt()) if mqtt else None,
                feed=target,
                interval=timedelta(seconds=interval),
                protocols=protocols,
                dlt645_baud=dlt645_baud if line_speed else 0,
                modbus_baud=modbus_baud if line_speed else 0,
            )
            async with runner:
                rows = [(e.gateway, e.protocol, e.where, e.meters) for e in runner.endpoints]
                header = ("gateway", "protocol", "where", "meters")
                console.print(table(header, rows, fleet.city.name))
                if target is None and feed_id is not None and "grid-feed" in protocols:
                    console.print("grid feed off: give --grid-key or --grid-key-file")
                console.print("running; stop with Ctrl-C")
                await stop.wait()

    try:
        run_until_signalled(main)
    except MeterhubError as exc:
        raise fail(str(exc)) from exc


def _bar(
    meters: list[SimulatedMeter], ticks: list[datetime], what: str, faults: bool
) -> AbstractContextManager[Callable[[int], None]]:
    return progress(expected_readings(meters, ticks, faults=faults), what)


@app.command()
def backfill(
    city_file: Path = CITY,
    weeks: float = typer.Option(8.0, min=0, help="how much history, in weeks"),
    until: str | None = typer.Option(None, help="history ends here (default: now)"),
    since: str | None = typer.Option(None, help="history starts here (instead of --weeks)"),
    api: str | None = API,
    grid_key: str | None = GRID_KEY,
    grid_key_file: Path | None = GRID_KEY_FILE,
    feed: str | None = FEED,
    mqtt: bool = typer.Option(False, "--mqtt", help="also the MQTT meters, via the broker"),
    mqtt_url: str | None = MQTT_URL,
    polled: bool = typer.Option(
        False, "--polled", help="also the Modbus/DL/T 645 meters, straight into the ingest sink"
    ),
    faults: bool = typer.Option(True, help="apply the meters' faults (gaps, garbage values)"),
    batch_size: int = typer.Option(5000, min=1, help="readings per HTTP batch"),
    interval: int = typer.Option(900, min=60, help="seconds between readings"),
) -> None:
    """Fast-forward: the grid-feed meters' readings at every interval of the past weeks
    (or since --since), pushed to the API (with --mqtt the MQTT meters' too, with --polled
    the polled ones')."""
    (fleet, feed_id), settings = load_fleet(city_file, feed), get_settings()
    key = read_grid_key(grid_key, grid_key_file)
    if key is None and not (mqtt or polled):
        raise fail("nothing to backfill: give --grid-key, --mqtt or --polled")
    step, end = timedelta(seconds=interval), time_option(until, default=wall_clock())
    span = timedelta(weeks=weeks) if since is None else end - time_option(since, default=end)
    ticks = history_ticks(until=end, span=span, interval=step)
    if not ticks:
        raise fail("no interval in that span: nothing to backfill")
    console.print(f"{len(ticks)} ticks, {ticks[0].isoformat()} to {ticks[-1].isoformat()}")

    async def main() -> None:
        if key is not None and feed_id is not None:
            meters = fleet.feed(feed_id)
            async with httpx.AsyncClient(base_url=api_url(api, settings), timeout=300) as http:
                client = GridFeedClient(http, key=key)
                with _bar(meters, ticks, f"feed {feed_id}", faults) as advance:
                    t = await backfill_feed(
                        client,
                        meters,
                        ticks,
                        batch_size=batch_size,
                        faults=faults,
                        progress=advance,
                    )
            names = ("batches", "received", "accepted", "duplicates", "rejected", "retries")
            console.print(table(names, [[getattr(t, n) for n in names]], "grid feed"))
        if mqtt:
            gateways, url = mqtt_gateways(fleet.city), broker_url(mqtt_url or settings.mqtt())
            with _bar(fleet.speaking("mqtt"), ticks, "MQTT gateways", faults) as advance:
                sent = await backfill_mqtt(
                    fleet, gateways, ticks, url=url, faults=faults, progress=advance
                )
            console.print(f"MQTT: {sent} readings acknowledged by the broker")
        if polled:
            conn = await connect(settings)
            try:
                ids = await meter_ids(conn, [i.code for m in fleet.meters for i in m.installations])
            finally:
                await conn.close()
            meters = fleet.speaking("modbus") + fleet.speaking("dlt645")
            options = ScheduleOptions()
            book = TerminalBook(
                offline_after=options.offline_after, drift_tolerance=options.drift_tolerance
            )
            async with IngestSink(settings.for_process("simulate")) as sink:
                with _bar(meters, ticks, "polled meters", faults) as advance:
                    got = await backfill_polled(
                        sink, fleet, ticks, meter_ids=ids, faults=faults, progress=advance,
                        terminals=book,
                    )  # fmt: skip
            conn = await connect(settings)
            try:  # the terminals' state as the poll scheduler would have left it
                await book.flush(conn)
            finally:
                await conn.close()
            console.print(f"polled: {got.accepted} accepted, {len(got.rejected)} quarantined")

    try:
        asyncio.run(main())
    except MeterhubError as exc:
        raise fail(str(exc)) from exc


# The demo's analytics steps live beside: older history, the grid export of the last year,
# waiting for ingest, findings.
app.command()(simulate_history.history)
app.command("export-history")(simulate_history.export_history)
app.command()(simulate_history.settle)
app.command()(simulate_history.findings)

"""What the `meterhub simulate` commands share: turning their options into a fleet, times, the
grid key and the API's URL (an error ends the command), and their console, progress bars and
tables."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from meterhub.errors import MeterhubError
from meterhub.settings import Settings
from simulators.city_file import load_city
from simulators.fleet import CityFleet
from simulators.schedule import parse_time

console = Console()
CITY = typer.Argument(..., help="the city file (TOML; schema in simulators/config.py)")
API = typer.Option(None, help="the meterhub API (default http://MHUB_API_HOST:MHUB_API_PORT)")


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


def time_option(text: str | None, *, default: datetime) -> datetime:
    try:
        return default if text is None else parse_time(text)
    except ValueError:
        raise fail(f"{text!r} is not an ISO 8601 time such as 2026-03-02T08:00+08:00") from None


def load_fleet(path: Path, feed: str | None = None) -> tuple[CityFleet, str | None]:
    """The city's fleet and the feed to push (``feed``, else the city's only one)."""
    try:
        fleet = CityFleet(load_city(path))
    except MeterhubError as exc:
        raise fail(str(exc)) from exc
    try:
        return fleet, fleet.the_feed(feed)
    except MeterhubError as exc:
        raise fail(f"{exc} with --feed") from exc


def read_grid_key(key: str | None, key_file: Path | None) -> str | None:
    try:
        return key_file.read_text(encoding="utf-8").strip() if key_file else key
    except OSError as exc:
        raise fail(f"cannot read the grid key: {exc}") from exc


def read_key(key_file: Path) -> str:
    """An API key kept in a file (one line)."""
    try:
        return key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise fail(f"cannot read the key file: {exc}") from exc


def api_url(api: str | None, settings: Settings) -> str:
    return (api or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")


@contextmanager
def backlog_bar(what: str) -> Iterator[Callable[[int], None]]:
    """A bar of a backlog being worked off: call it with what is left; the largest count
    seen is the total."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
        task, most = bar.add_task(what, total=None), 0

        def left(pending: int) -> None:
            nonlocal most
            most = max(most, pending)
            bar.update(task, total=most, completed=most - pending)

        yield left


@contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> Table:
    table = Table(*header, title=title or None)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def findings_by_rule(
    api: str, key: str, *, week: date, page: int = 1000
) -> dict[str, list[dict[str, Any]]]:
    """The findings open during ``week`` (its Monday), from ``GET /v1/findings``, by rule."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    offset, total = 0, 1
    with httpx.Client(base_url=api, headers={"X-API-Key": key}, timeout=30) as http:
        while offset < total:
            params: dict[str, str | int] = {
                "week": week.isoformat(),
                "limit": page,
                "offset": offset,
            }
            response = http.get("/v1/findings", params=params)
            if response.status_code != 200:
                raise fail(f"GET /v1/findings answered {response.status_code}: {response.text}")
            body = response.json()
            total = body["total"]
            for item in body["items"]:
                by_rule.setdefault(item["rule"], []).append(item)
            offset += page
    return by_rule


async def settle(
    conn: asyncpg.Connection,
    *,
    quiet: float,
    timeout: float,
    backlog: Callable[[int], None] | None = None,
) -> bool:
    """Wait until what was handed to ingest is stored and derived: no interval work
    pending (``interval_dirty`` empty) and no row inserted in the database for ``quiet``
    seconds (the MQTT worker drains the broker's queue at its own pace). False on
    ``timeout``. ``backlog`` is told the pending marks at each look."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        inserted = await conn.fetchval(
            "SELECT tup_inserted FROM pg_stat_database WHERE datname = current_database()"
        )
        pending = await conn.fetchval("SELECT count(*) FROM interval_dirty")
        if backlog is not None:
            backlog(pending)
        if inserted != last or pending:
            last, since = inserted, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
        await asyncio.sleep(1.0)
    return False

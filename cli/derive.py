"""`meterhub derive`: the interval worker on its own."""

from __future__ import annotations

import asyncio

import typer

from cli.runner import run_until_signalled
from ingest.interval_worker import run_interval_worker
from meterhub.logs import configure_logging, get_logger
from meterhub.runtime import tune_gc
from meterhub.settings import get_settings

log = get_logger(__name__)


def derive(
    idle: float = typer.Option(1.0, help="seconds to wait when nothing is pending"),
) -> None:
    """Derive 15-minute intervals, events and hourly/daily/monthly rollups from new readings
    until SIGINT/SIGTERM. `meterhub serve` does this too unless MHUB_INTERVAL_WORKER=false;
    several may run at once (each pass claims meters no other pass holds)."""
    settings = get_settings()
    configure_logging(settings)
    tune_gc()

    async def main(stop: asyncio.Event) -> None:
        log.info("interval worker starting")
        await run_interval_worker(settings, idle=idle, stop=stop)

    run_until_signalled(main)

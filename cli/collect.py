"""`meterhub collect`: the poll scheduler for Modbus and DL/T 645 terminals."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer

from cli.runner import run_until_signalled
from collectors.dlt645.dtu import DtuListener
from collectors.dlt645.poller import Dlt645Poller
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.scheduler import ScheduleOptions, Scheduler
from collectors.targets import Poller
from ingest.sink import IngestSink
from meterhub.logs import configure_logging, get_logger
from meterhub.runtime import tune_gc
from meterhub.settings import get_settings

log = get_logger(__name__)


def _pollers(timeout: float, dtu_listener: DtuListener | None) -> dict[str, Poller]:
    return {
        "modbus": ModbusPoller(LinkOptions(timeout=timeout, retries=0)),
        "dlt645": Dlt645Poller(dtu_listener=dtu_listener, timeout=timeout, retries=0),
    }


def collect(
    name: str = typer.Option("collector", help="this process's name in heartbeats and logs"),
    timeout: float = typer.Option(2.0, help="seconds a meter has to answer one request"),
    retries: int = typer.Option(2, help="retries of a failed poll, with exponential backoff"),
    offline_after: int = typer.Option(3, help="consecutive failed polls before offline"),
    drift_tolerance: float = typer.Option(30.0, help="seconds of meter-clock drift flagged"),
    reload_every: float = typer.Option(60.0, help="seconds between registry reloads"),
) -> None:
    """Poll every registered Modbus and DL/T 645 terminal on its clock-aligned interval
    (default 15 min, per meter in the registry) and hand the readings to the ingest path.

    Terminal health (online/offline, clock drift) goes to terminal_status and
    terminal_events. Stops cleanly on SIGINT/SIGTERM."""
    settings = get_settings()
    configure_logging(settings)
    tune_gc()
    options = ScheduleOptions(
        timeout=timeout,
        retries=retries,
        offline_after=offline_after,
        drift_tolerance=timedelta(seconds=drift_tolerance),
        reload_every=reload_every,
        clock_spread=True,  # a start must not read every meter's clock in one cycle
    )

    async def main(stop: asyncio.Event) -> None:
        listener = None
        if settings.dtu_port is not None:
            listener = DtuListener("0.0.0.0", settings.dtu_port)
            await listener.start()
            log.info("listening for DTUs", port=settings.dtu_port)
        pollers = _pollers(timeout, listener)
        try:
            async with IngestSink(settings.for_process("collector")) as sink:
                scheduler = Scheduler(
                    settings, sink=sink, pollers=pollers, options=options, name=name
                )
                log.info("collector starting", name=name, protocols=sorted(pollers))
                await scheduler.run(stop)
        finally:
            for poller in pollers.values():
                await poller.close()
            if listener is not None:
                await listener.aclose()

    run_until_signalled(main, fast_loop=True)

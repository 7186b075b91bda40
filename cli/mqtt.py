"""`meterhub ingest-mqtt`: gateway messages from the broker into the database, until stopped.

Also runnable on its own: ``python -m cli.mqtt --help``.
"""

from __future__ import annotations

import asyncio
import signal

import typer
from prometheus_client import start_http_server

from collectors.mqtt.worker import MqttIngestWorker
from ingest.sink import IngestSink
from meterhub.logs import configure_logging, get_logger
from meterhub.runtime import tune_gc
from meterhub.settings import get_settings

log = get_logger(__name__)


def ingest_mqtt(
    group: str = typer.Option(
        "ingest",
        help="shared-subscription group: workers of one group split the messages "
        "($share/GROUP/meterhub/v1/+/readings)",
    ),
    client_id: str | None = typer.Option(
        None,
        help="MQTT client id; keep it stable across restarts (the broker keeps this "
        "worker's session and queued messages under it) and unique per worker "
        "(default: meterhub-GROUP-HOSTNAME)",
    ),
    gateways: str = typer.Option("+", help="'+' for every gateway, or one gateway id"),
    receive_maximum: int = typer.Option(
        10_000, min=1, max=65534, help="most messages in flight (received, not yet acked)"
    ),
    session_expiry: int = typer.Option(
        86400, min=60, help="seconds the broker keeps the session while this worker is away"
    ),
    end_session: bool = typer.Option(
        False,
        "--end-session",
        help="on stop, unsubscribe, drain and end the broker session: for decommissioning "
        "a worker for good (otherwise its share of messages waits for it to come back)",
    ),
    drain_timeout: float = typer.Option(
        30.0, help="seconds to finish in-flight messages on stop; the rest is redelivered"
    ),
    metrics_port: int | None = typer.Option(
        None, help="serve Prometheus metrics on this port (all addresses)"
    ),
) -> None:
    """Ingest MQTT gateway messages (QoS 1, acked once durable) until SIGINT or SIGTERM.

    Broker URL from MHUB_MQTT_URL, database from MHUB_DATABASE_URL, spool from
    MHUB_SPOOL_DIR. On SIGINT/SIGTERM the worker stops taking messages, commits and
    acknowledges those in flight, then closes the ingest sink (flushing it).
    """
    settings = get_settings()
    configure_logging(settings)
    tune_gc()
    if metrics_port is not None:
        start_http_server(metrics_port)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with (
            IngestSink(settings.for_process("ingest-mqtt")) as sink,
            MqttIngestWorker(
                settings,
                sink,
                group=group,
                client_id=client_id,
                gateways=gateways,
                receive_maximum=receive_maximum,
                session_expiry=session_expiry,
                end_session=end_session,
                drain_timeout=drain_timeout,
            ) as worker,
        ):
            log.info("ingesting from mqtt", client_id=worker.client_id, group=group)
            await stop.wait()
            log.info("stop requested; draining")

    asyncio.run(run())


if __name__ == "__main__":
    typer.run(ingest_mqtt)

"""`meterhub serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import typer
import uvicorn

from api.app import create_app
from meterhub.logs import configure_logging
from meterhub.runtime import tune_gc
from meterhub.settings import get_settings


def serve(
    host: str | None = typer.Option(None, help="listen address [default: MHUB_API_HOST]"),
    port: int | None = typer.Option(None, help="listen port [default: MHUB_API_PORT]"),
) -> None:
    """Serve the API (OpenAPI docs at /docs, health at /livez and /readyz, /metrics)."""
    settings = get_settings()
    configure_logging(settings)
    tune_gc()
    uvicorn.run(
        create_app(settings.for_process("api")),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
    )

"""The FastAPI application: the grid feed, the registry, trend queries, operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from alerts import rulebook
from api import problems
from api.health import BrokerProbe
from api.routes import findings, firms, meters, ops, readings, terminals, towns, trends
from collectors.gridfeed.meters import FeedMeters
from ingest.interval_worker import run_interval_worker
from ingest.sink import IngestSink
from meterhub import __version__
from meterhub.db import create_pool
from meterhub.errors import DatabaseUnavailableError
from meterhub.logs import get_logger
from meterhub.settings import Settings, get_settings
from meterhub.supervise import Backoff, Supervisor
from registry.keys import KeyStore

_STATIC = Path(__file__).parent / "static"
log = get_logger(__name__)

#: At start the API waits this long for the database, then serves without it (`/livez`
#: answers, `/readyz` says 503) while a supervised task keeps trying.
_FIRST_CONNECT_TIMEOUT = 5.0
_RECONNECT = Backoff(first=0.5, most=5.0)
_WORKER_STOP_TIMEOUT = 10.0


async def _open_pool(app: FastAPI, settings: Settings, *, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            app.state.pool = await create_pool(settings)
    except (DatabaseUnavailableError, TimeoutError) as exc:
        log.debug("database unavailable", error=str(exc))
        return False
    return True


async def _keep_opening_pool(app: FastAPI, settings: Settings) -> None:
    """Open the pool once the database answers (the pool then reconnects by itself)."""
    log.error("database unavailable at start; serving without it and retrying")
    for delay in _RECONNECT.delays():
        await asyncio.sleep(delay)
        if await _open_pool(app, settings, timeout=30.0):
            log.info("database reachable; connection pool open")
            return


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.rulebook = rulebook.load(settings.rules_file)
        app.state.keys = KeyStore()
        app.state.feed_meters = FeedMeters()
        app.state.broker = BrokerProbe(settings.mqtt())
        app.state.pool = None
        stop = asyncio.Event()
        async with Supervisor() as supervisor:
            app.state.supervisor = supervisor
            if not await _open_pool(app, settings, timeout=_FIRST_CONNECT_TIMEOUT):
                supervisor.start("database-pool", lambda: _keep_opening_pool(app, settings))
            async with IngestSink(settings, supervisor=supervisor) as sink:
                app.state.sink = sink
                worker = None
                if settings.interval_worker:
                    worker = supervisor.start(
                        "interval-worker", lambda: run_interval_worker(settings, stop=stop)
                    )
                yield
                stop.set()
                if worker is not None:  # its run ends; one waiting to restart is cancelled
                    await asyncio.wait({worker}, timeout=_WORKER_STOP_TIMEOUT)
        if app.state.pool is not None:
            await app.state.pool.close()

    app = FastAPI(
        title="meterhub",
        version=__version__,
        summary="Smart-meter data service: grid feeds, registry, trends, terminal health",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    problems.install(app)
    routers = (ops, readings, firms, meters, towns, trends, terminals, findings)
    for module in routers:
        app.include_router(module.router)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="meterhub API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    return app

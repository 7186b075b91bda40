"""The FastAPI application: the grid feed, the registry, trend queries, operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from alerts import rulebook
from alerts.notices import config as notice_config
from alerts.schedule import run_schedule
from api import openapi, problems
from api.health import INTERVAL_WORKER_TASK, BrokerProbe
from api.params import STRICT_QUERY
from api.routes import (
    campaign,
    evaluations,
    findings,
    firm_attributes,
    firms,
    meters,
    notices,
    ops,
    profiles,
    readings,
    reference,
    terminals,
    towns,
    trends,
)
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
    app.state.pool_ready.set()
    return True


async def _keep_opening_pool(app: FastAPI, settings: Settings) -> None:
    """Open the pool once the database answers (the pool then reconnects by itself)."""
    log.error("database unavailable at start; serving without it and retrying")
    for delay in _RECONNECT.delays():
        await asyncio.sleep(delay)
        if await _open_pool(app, settings, timeout=30.0):
            log.info("database reachable; connection pool open")
            return


async def _weekly_clock(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """The weekly analytics and notice on their Monday 08:00 clock, once the pool is open
    (a crash, e.g. the database going away, is the supervisor's to log and restart)."""
    waits = {asyncio.ensure_future(app.state.pool_ready.wait()), asyncio.ensure_future(stop.wait())}
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in pending:
        waiting.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if stop.is_set():
        return
    await run_schedule(
        app.state.pool,
        settings=settings,
        rulebook=app.state.rulebook,
        notices=app.state.notice_config,
        stop=stop,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.rulebook = rulebook.load(settings.rules_file)
        app.state.notice_config = notice_config.load(settings.notice_file)
        app.state.keys = KeyStore()
        app.state.feed_meters = FeedMeters()
        app.state.broker = BrokerProbe(settings.mqtt())
        app.state.pool = None
        app.state.pool_ready = asyncio.Event()
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
                        INTERVAL_WORKER_TASK, lambda: run_interval_worker(settings, stop=stop)
                    )
                if settings.alerts_schedule:
                    supervisor.start("weekly-analytics", lambda: _weekly_clock(app, settings, stop))
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
        # One check for every route: an unknown or NUL-carrying query parameter is a 422.
        dependencies=STRICT_QUERY,
    )
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    problems.install(app)
    routers = (
        ops,
        readings,
        firms,
        firm_attributes,
        meters,
        towns,
        reference,
        trends,
        terminals,
        findings,
        profiles,
        evaluations,
        notices,
        campaign,
    )
    for module in routers:
        app.include_router(module.router)
    openapi.install(app)

    @app.get("/", include_in_schema=False)
    async def dashboard(test: bool = False) -> FileResponse:
        """The bureau's dashboard (static files under /static/dashboard/); ``?test=1``
        (read by the page itself) turns chart animation off."""
        return FileResponse(_STATIC / "dashboard" / "index.html")

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

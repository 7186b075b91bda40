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
from api import problems
from api.health import BrokerProbe
from api.params import STRICT_QUERY
from api.routes import (
    evaluations,
    findings,
    firms,
    meters,
    notices,
    ops,
    profiles,
    readings,
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
from registry.keys import KeyStore

_STATIC = Path(__file__).parent / "static"
log = get_logger(__name__)


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
        try:
            app.state.pool = await create_pool(settings)
        except DatabaseUnavailableError as exc:
            log.error("database unavailable at start; /readyz will say so", error=str(exc))
            app.state.pool = None
        stop = asyncio.Event()
        async with IngestSink(settings) as sink:
            app.state.sink = sink
            worker = None
            if settings.interval_worker:
                worker = asyncio.create_task(run_interval_worker(settings, stop=stop))
            yield
            stop.set()
            if worker is not None:
                await worker
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
        meters,
        towns,
        trends,
        terminals,
        findings,
        profiles,
        evaluations,
        notices,
    )
    for module in routers:
        app.include_router(module.router)

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

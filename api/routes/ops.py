"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.health import check_broker, check_collectors, check_database, check_spool

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process is alive")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database, the broker and the collectors answer",
    responses={503: {"description": "a dependency is down; the body says which"}},
)
async def readyz(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    pool = request.app.state.pool
    checks = [
        *await asyncio.gather(
            check_database(pool), check_broker(settings.mqtt()), check_collectors(pool)
        ),
        check_spool(getattr(request.app.state, "sink", None)),
    ]
    ok = all(check.ok for check in checks)
    body: dict[str, Any] = {
        "status": "ok" if ok else "unavailable",
        "checks": {
            c.name: {"ok": c.ok, "detail": c.detail, "latency_ms": round(c.latency_ms, 1)}
            for c in checks
        },
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

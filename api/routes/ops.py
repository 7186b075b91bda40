"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import OptionalPrincipalDep
from api.health import (
    BROKER_CHECK_TTL,
    BrokerProbe,
    Check,
    check_collectors,
    check_database,
    check_intervals,
    check_spool,
    check_workers,
    interval_worker_state,
)

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process is alive")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


def _check(check: Check, *, detailed: bool) -> dict[str, Any]:
    if not detailed:
        return {"ok": check.ok}
    latency = round(check.latency_ms, 1)
    return {"ok": check.ok, "detail": check.detail, "latency_ms": latency, **check.figures}


@router.get(
    "/readyz",
    summary="The database, the broker and the collectors answer; no worker is down or stalled",
    description=(
        "Anyone gets each check's `ok`; a caller with a valid API key (any role) also gets "
        "its `detail` and `latency_ms`, and for `intervals` the derivation backlog "
        "(`ranges`, `ranges_capped`, `oldest_age_seconds`) and the interval worker's state "
        "(`worker`: `state` one of running, restarting, dead, stopped, elsewhere; "
        "`uptime_seconds`, `last_pass_age_seconds`, `restarts`, `last_error`). The broker "
        f"check is shared by all probes for {BROKER_CHECK_TTL:.0f} s, so probes never open "
        "a broker connection each."
    ),
    responses={503: {"description": "a dependency is down; the body says which"}},
)
async def readyz(request: Request, principal: OptionalPrincipalDep) -> JSONResponse:
    pool = request.app.state.pool
    broker: BrokerProbe = request.app.state.broker
    settings = request.app.state.settings
    supervisor = getattr(request.app.state, "supervisor", None)
    worker = interval_worker_state(supervisor, configured=settings.interval_worker)
    checks = [
        *await asyncio.gather(
            check_database(pool),
            broker.check(),
            check_collectors(pool),
            check_intervals(pool, stall_after=settings.interval_stall_after, worker=worker),
        ),
        check_spool(getattr(request.app.state, "sink", None)),
        check_workers(supervisor),
    ]
    ok = all(check.ok for check in checks)
    body: dict[str, Any] = {
        "status": "ok" if ok else "unavailable",
        "checks": {c.name: _check(c, detailed=principal is not None) for c in checks},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

"""RFC 9457 problem details: every error the API returns, in one place.

Each problem has a stable ``type`` (``/problems/<code>``) that clients can key on.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts import errors as alerts
from alerts.carbon import NoGridFactorError
from alerts.evaluation import InvalidSchemeError
from alerts.notices.lifecycle import ForbiddenCaseError
from collectors.gridfeed.errors import (
    FeedFormatError,
    FeedMediaTypeError,
    FeedTooLargeError,
    MeterLookupUnavailableError,
)
from meterhub.errors import MeterhubError
from meterhub.logs import get_logger
from registry import errors as registry
from registry.reference import errors as reference

MEDIA_TYPE = "application/problem+json"

_log = get_logger(__name__)


class Problem(MeterhubError):
    """An error with an HTTP status; raise it from routes and services."""

    status = 500
    code = "internal"
    title = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Missing, unknown or revoked API key"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "The key's role or scope does not allow this"


class NotFound(Problem):
    status, code, title = 404, "not_found", "No such resource"


class Conflict(Problem):
    status, code, title = 409, "conflict", "The request conflicts with the current state"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "The body exceeds the size limit"


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported_media_type", "Send JSON, NDJSON or CSV"


class UnsupportedSheetType(UnsupportedMediaType):
    title = "Send the sheet as text/csv or as an XLSX workbook"


class InvalidBody(Problem):
    status, code, title = 400, "invalid_body", "The body could not be parsed"


class InvalidRequest(Problem):
    status, code, title = 422, "invalid_request", "The request parameters are not valid"


class RowsRejected(InvalidRequest):
    code = "invalid_rows"
    title = "Some rows of the sheet are not valid; nothing was written"


class TooManyRequests(Problem):
    status, code, title = 429, "too_many_requests", "The key's quota is used up; retry later"


class AddressNotAllowed(InvalidRequest):
    code = "address_not_allowed"
    title = "Collectors may not connect to this address (see MHUB_COLLECT_NETWORKS)"


class Busy(Problem):
    status, code, title = 503, "busy", "The ingest queue is full; retry after the given delay"


class Unavailable(Problem):
    status, code, title = 503, "unavailable", "A dependency is unavailable"


PROBLEMS: tuple[type[Problem], ...] = (
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnsupportedSheetType,
    InvalidBody,
    InvalidRequest,
    RowsRejected,
    TooManyRequests,
    AddressNotAllowed,
    Busy,
    Unavailable,
)


#: Domain errors -> the problem they answer with (the most specific class wins). The
#: services below `api/` raise these; routes let them through.
DOMAIN_PROBLEMS: dict[type[MeterhubError], type[Problem]] = {
    registry.NotFoundError: NotFound,
    registry.ConflictError: Conflict,
    registry.InvalidError: InvalidRequest,
    registry.AddressNotAllowedError: AddressNotAllowed,
    registry.ForbiddenScopeError: Forbidden,
    reference.MembershipOverlapError: Conflict,
    reference.InUseError: Conflict,
    reference.InvalidReferenceError: InvalidRequest,
    # The push raises these as Unavailable with Retry-After itself (api.deps, the route).
    registry.KeyLookupUnavailableError: Unavailable,
    MeterLookupUnavailableError: Unavailable,
    FeedFormatError: InvalidBody,
    FeedMediaTypeError: UnsupportedMediaType,
    FeedTooLargeError: PayloadTooLarge,
    alerts.UnknownSchemeError: InvalidRequest,
    alerts.InvalidPeriodError: InvalidRequest,
    alerts.InvalidQueryError: InvalidRequest,
    InvalidSchemeError: InvalidRequest,
    NoGridFactorError: Conflict,
    alerts.CaseNotFoundError: NotFound,
    alerts.TransitionRefusedError: Conflict,
    alerts.MeteredCheckError: Conflict,
    ForbiddenCaseError: Forbidden,
}


def domain_problem(exc: MeterhubError) -> type[Problem]:
    """The problem for ``exc``: its nearest class in `DOMAIN_PROBLEMS`."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_PROBLEMS:
            return DOMAIN_PROBLEMS[cls]
    return Problem


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route can answer with."""
    return {
        p.status: {
            "description": p.title,
            "content": {
                MEDIA_TYPE: {
                    "example": {"type": f"/problems/{p.code}", "title": p.title, "status": p.status}
                }
            },
        }
        for p in problems
    }


class _Unexpected:
    """ASGI middleware: any other exception is logged once (class, method, path and a plain
    traceback, never the request's headers) and answered with a problem+json 500 whose
    ``error_id`` is in the log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:16]
            _log.error(
                "unexpected error",
                error=type(exc).__name__,
                error_id=error_id,
                method=scope["method"],
                path=scope["path"],
                exc_info=exc,
            )
            if started:  # too late for a problem body; the server ends the response
                return
            response = problem_response(
                status=500,
                code=Problem.code,
                title=Problem.title,
                detail="an unexpected error; it is logged under this error_id",
                instance=scope["path"],
                error_id=error_id,
            )
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Map domain errors, HTTP errors and validation errors to problem+json; any other
    exception becomes a logged problem+json 500."""

    app.add_middleware(_Unexpected)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MeterhubError)
        problem = domain_problem(exc)
        return problem_response(
            status=problem.status,
            code=problem.code,
            title=problem.title,
            detail=str(exc),
            instance=request.url.path,
            **getattr(exc, "extra", {}),
        )

    for error in DOMAIN_PROBLEMS:
        app.add_exception_handler(error, _domain)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return problem_response(
            status=422,
            code=InvalidRequest.code,
            title=InvalidRequest.title,
            detail="; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(
            status=exc.status_code,
            code=code,
            title=str(exc.detail),
            detail=str(exc.detail),
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

"""The OpenAPI document as the API behaves: FastAPI's generated schema, then every error
response the application itself can send documented on every operation it applies to.

* 422 everywhere (every route checks its query, `api.params.STRICT_QUERY`), as
  ``application/problem+json`` with the ``errors`` list (FastAPI documents its own
  ``application/json`` `HTTPValidationError`, which this API never sends);
* 401, 403 and 503 on every route that takes a key (`api.deps.get_principal`: missing or
  unknown key, a role or scope that may not, a key not verifiable while the database is
  away); 503 on every route that needs the database (`api.deps.get_pool`);
* 400 on every route with a JSON body (a body FastAPI cannot parse at all);
* every 4xx/5xx a route documents gets the `Problem` schema besides its example;
* a meter's registration documents the address each protocol needs (what `MeterIn`
  checks), not just "an object".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from api.deps import get_pool, get_principal
from api.problems import (
    MEDIA_TYPE,
    Forbidden,
    InvalidBody,
    InvalidRequest,
    Problem,
    Unauthorized,
    Unavailable,
)
from registry.meters import _ADDRESS_KEYS, DLT645_ADDRESS

_REF = "#/components/schemas/"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `type` is stable (`/problems/<code>`). Some "
    "problems carry more members (e.g. `limit`, `errors`, `accepted`, `error_id`).",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "examples": ["/problems/not_found"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}

VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "allOf": [
        {"$ref": f"{_REF}Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "description": "one entry per invalid parameter or body member (bad "
                    "rows of an import: row, column, message)",
                    "items": {"type": "object", "additionalProperties": True},
                }
            },
        },
    ],
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def api_routes(app: FastAPI) -> Iterator[RouteContext]:
    """Every API route of ``app`` as served (with its router's prefix and dependencies)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def route_facts(route: RouteContext) -> tuple[bool, bool, bool]:
    """(takes a key, needs the database, has a JSON body) for ``route``."""
    calls = set(_calls(route.dependant))
    json_body = route.body_field is not None
    return get_principal in calls, get_pool in calls or get_principal in calls, json_body


def _problem_response(problem: type[Problem], schema: str = "Problem") -> dict[str, Any]:
    example = {"type": f"/problems/{problem.code}", "title": problem.title}
    return {
        "description": problem.title,
        "content": {
            MEDIA_TYPE: {
                "schema": {"$ref": f"{_REF}{schema}"},
                "example": example | {"status": problem.status},
            }
        },
    }


def _ensure(responses: dict[str, Any], problem: type[Problem]) -> None:
    responses.setdefault(str(problem.status), _problem_response(problem))


def _as_problems(responses: dict[str, Any]) -> None:
    """Every error response documented as problem+json with the `Problem` schema."""
    for status, response in responses.items():
        if status[:1] not in "45":
            continue
        content = response.setdefault("content", {})
        content.pop("application/json", None)
        entry = content.setdefault(MEDIA_TYPE, {})
        entry["schema"] = {"$ref": f"{_REF}Problem"}


def _meter_addresses(components: dict[str, Any]) -> None:
    """`MeterIn`'s address: the keys of each protocol, the DL/T 645 number's form."""
    meter_in = components.get("MeterIn")
    if meter_in is None:
        return
    rules = []
    for protocol, keys in _ADDRESS_KEYS.items():
        address: dict[str, Any] = {"type": "object", "required": list(keys)}
        if protocol == "dlt645":
            number = {"type": "string", "pattern": f"^{DLT645_ADDRESS.pattern}$"}
            address["properties"] = {"address": number}
        rules.append(
            {
                "if": {"properties": {"protocol": {"const": protocol}}, "required": ["protocol"]},
                "then": {"properties": {"address": address}},
            }
        )
    meter_in["allOf"] = rules


def document_errors(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's document of ``app``) with the errors the app sends."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _meter_addresses(components)
    for route in api_routes(app):
        keyed, database, json_body = route_facts(route)
        path = schema["paths"][route.path_format]
        for method in route.methods or ():
            operation = path.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            _as_problems(responses)
            responses["422"] = _problem_response(InvalidRequest, "ValidationProblem")
            if keyed:
                _ensure(responses, Unauthorized)
                _ensure(responses, Forbidden)
            if database:
                _ensure(responses, Unavailable)
            if json_body:
                _ensure(responses, InvalidBody)
    return schema


def install(app: FastAPI) -> None:
    """Serve the corrected document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document_errors(app, schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

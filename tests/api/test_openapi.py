"""The OpenAPI document matches what the API does: every route documents each status its
own code (and its dependencies' code) can raise, 401/403 when it takes a key, 422 as
problem+json everywhere; the named gaps of issue 13 are closed."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant

from api.app import create_app
from api.openapi import api_routes, route_facts
from api.params import strict_query
from api.problems import MEDIA_TYPE, Problem, domain_problem
from meterhub.errors import MeterhubError
from tests.api.conftest import Keys

SCHEMA = create_app().openapi()
#: The packages whose functions the walk follows (the API and the services it calls).
OURS = ("api", "registry", "collectors.gridfeed", "alerts")
APP = create_app()


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in SCHEMA["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def _resolve(node: ast.expr, module: types.ModuleType) -> Any:
    if isinstance(node, ast.Name):
        return vars(module).get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, module)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _problem_of(obj: Any) -> type[Problem] | None:
    """The problem raising ``obj`` answers with: a problem class, a domain error mapped in
    `api.problems.DOMAIN_PROBLEMS`, or what a function returns (``raise f()``)."""
    if inspect.isfunction(obj):
        obj = typing.get_type_hints(obj).get("return")
    if isinstance(obj, type) and issubclass(obj, Problem):
        return obj
    if isinstance(obj, type) and issubclass(obj, MeterhubError):
        problem = domain_problem(obj.__new__(obj))
        return None if problem is Problem else problem
    return None


def raised(func: Callable[..., Any], seen: set[Callable[..., Any]]) -> set[type[Problem]]:
    """The problems ``func`` raises, and those of the functions it calls in our packages."""
    func = inspect.unwrap(func)
    module = inspect.getmodule(func)
    if module is None or not module.__name__.startswith(OURS) or func in seen:
        return set()
    seen.add(func)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return set()
    found: set[type[Problem]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if (problem := _problem_of(_resolve(target, module))) is not None:
                found.add(problem)
        elif isinstance(node, ast.Call):
            called = _resolve(node.func, module)
            if inspect.isfunction(called):
                found |= raised(called, seen)
    return found


#: What the walk finds but cannot happen: a service re-reading the row it has just written
#: (``get_firm`` / ``get_meter`` after the INSERT, in the same transaction) never finds none.
CANNOT_HAPPEN: dict[tuple[str, str], set[int]] = {
    ("POST", "/v1/firms"): {404},
    ("POST", "/v1/meters"): {404},
}


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """The route's dependencies, but for the app-wide `strict_query`: its 422 is counted
    for every route, and the key check it may run first is the route's own (counted by
    `route_facts`)."""
    for sub in dependant.dependencies:
        if sub.call is not None and sub.call is not strict_query:
            yield sub.call
        yield from _dependency_calls(sub)


def _routes() -> list[tuple[str, str, set[int]]]:
    """(method, path, statuses the route's code can send) for every documented route."""
    out = []
    for route in api_routes(APP):
        assert route.endpoint is not None and route.path_format is not None
        path: str = route.path_format
        seen: set[Callable[..., Any]] = set()
        problems = raised(route.endpoint, seen)
        for call in _dependency_calls(route.dependant):
            problems |= raised(call, seen)
        keyed, database, json_body = route_facts(route)
        statuses = {p.status for p in problems} | {422}
        statuses |= {401, 403, 503} if keyed else set()
        statuses |= {503} if database else set()
        statuses |= {400} if json_body else set()
        for method in route.methods or ():
            impossible = CANNOT_HAPPEN.get((method, path), set())
            out.append((method, path, statuses - impossible))
    return out


ROUTES = _routes()


def test_the_walk_sees_the_whole_api_and_what_routes_raise() -> None:
    assert len(ROUTES) == sum(1 for _ in _operations()) > 50
    raising = {(m, p): s for m, p, s in ROUTES}
    assert {413, 415, 429, 503} <= raising[("POST", "/v1/readings")]  # the route's own raises
    assert {413, 415, 422} <= raising[("POST", "/v1/firms/import")]  # through read_upload


@pytest.mark.parametrize(("method", "path", "statuses"), ROUTES, ids=lambda v: str(v))
def test_every_status_a_route_can_send_is_documented(
    method: str, path: str, statuses: set[int]
) -> None:
    documented = {int(s) for s in SCHEMA["paths"][path][method.lower()]["responses"]}
    assert statuses <= documented, f"{method} {path}: undocumented {statuses - documented}"


def test_422_is_problem_json_everywhere_and_no_error_is_plain_json() -> None:
    for method, path, op in _operations():
        invalid = op["responses"]["422"]["content"]
        assert list(invalid) == [MEDIA_TYPE], (method, path)
        assert invalid[MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}
        for status, response in op["responses"].items():
            if status[0] in "45" and "content" in response:
                assert "application/json" not in response["content"], (method, path, status)
    assert "HTTPValidationError" not in SCHEMA["components"]["schemas"]


def test_every_keyed_route_documents_401_and_403() -> None:
    keyed = 0
    for route in api_routes(APP):
        if route_facts(route)[0]:
            keyed += 1
            for method in route.methods or ():
                responses = SCHEMA["paths"][route.path_format][method.lower()]["responses"]
                assert {"401", "403"} <= set(responses), (method, route.path_format)
    assert keyed > 50


def test_the_gaps_named_in_issue_13_are_documented() -> None:
    paths = SCHEMA["paths"]
    assert "409" in paths["/v1/firms"]["post"]["responses"]
    assert "400" in paths["/v1/firms"]["post"]["responses"]
    assert "404" in paths["/v1/meters"]["get"]["responses"]
    push = paths["/v1/readings"]["post"]
    assert {"400", "413", "415", "429"} <= set(push["responses"])
    body = push["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array" and set(body["items"]["required"]) == {"meter", "ts"}
    assert body["items"]["properties"]["energy"] == {"type": ["number", "null"]}
    assert push["requestBody"]["content"]["application/x-ndjson"]["schema"]["description"]
    for path, ops in paths.items():
        if path.endswith("/import"):
            assert {"413", "415"} <= set(ops["post"]["responses"]), path
            assert ops["post"]["requestBody"]["content"]["text/csv"]["schema"]["minLength"] == 1


def test_a_meters_address_is_documented_per_protocol() -> None:
    rules = SCHEMA["components"]["schemas"]["MeterIn"]["allOf"]
    by_protocol = {r["if"]["properties"]["protocol"]["const"]: r["then"] for r in rules}
    assert by_protocol["modbus"]["properties"]["address"]["required"] == ["host", "port", "unit_id"]
    dlt645 = by_protocol["dlt645"]["properties"]["address"]
    assert dlt645["properties"]["address"]["pattern"] == "^[0-9]{12}$"


@pytest.mark.integration
async def test_documented_statuses_are_the_ones_sent(client: httpx.AsyncClient, keys: Keys) -> None:
    """A few answers checked against the document: a non-JSON body, an unknown firm id."""
    sent = [
        await client.post("/v1/firms", content=b"\xff{not json", headers=keys.headers("bureau")),
        await client.get("/v1/meters", params={"firm_id": 0}, headers=keys.headers("bureau")),
        await client.post(
            "/v1/firms/import",
            json=[{"credit_code": "x"}],
            headers=keys.headers("bureau"),
        ),
    ]
    for response, (method, path) in zip(
        sent,
        [("post", "/v1/firms"), ("get", "/v1/meters"), ("post", "/v1/firms/import")],
        strict=True,
    ):
        assert str(response.status_code) in SCHEMA["paths"][path][method]["responses"]
        assert response.headers["content-type"] == MEDIA_TYPE
    assert sent[1].status_code == 404
    assert sent[2].status_code == 415

"""Parameter rules every route shares: one dependency that refuses unknown query
parameters and NUL characters in any of them, and the bounded id, offset and day types.

The application is made with ``dependencies=STRICT_QUERY``, so a typo (``granulartiy=``)
is a 422 naming the unknown parameter and the accepted ones, never a silently ignored
option answered with its default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.dependencies.models import Dependant

from api.deps import get_pool, get_principal
from api.problems import InvalidRequest
from registry.fields import Int64, Offset


def _query_names(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        yield field.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def _accepted(route: Any) -> frozenset[str]:
    """The query parameters ``route`` takes (its dependencies' included), computed once
    and kept on the route (routes are not hashable)."""
    names: frozenset[str] | None = getattr(route, "_meterhub_query_names", None)
    if names is None:
        dependant: Dependant | None = getattr(route, "dependant", None)
        names = frozenset(_query_names(dependant)) if dependant is not None else frozenset()
        if route is not None:
            route._meterhub_query_names = names
    return names


def _guard(dependant: Dependant | None) -> Any:
    """The route's key check: the dependency that calls `get_principal` (a role check made
    by `api.deps.allow`, or `get_principal` itself), or None for a public route."""
    for sub in dependant.dependencies if dependant is not None else ():
        if sub.call is get_principal:
            return get_principal
        if any(d.call is get_principal for d in sub.dependencies):
            return sub.call
        found = _guard(sub)
        if found is not None:
            return found
    return None


async def _authorised_first(request: Request) -> None:
    """Run the route's key and role check now, so that a bad query from a caller without
    the right key is still 401/403 (authorise first), never 422."""
    guard = _guard(getattr(request.scope.get("route"), "dependant", None))
    if guard is None:
        return
    key = request.headers.get("X-API-Key")
    principal = await get_principal(request, get_pool(request), key)
    if guard is not get_principal:
        await guard(principal)


async def strict_query(request: Request) -> None:
    """422 for a query parameter the route does not take, or one holding a NUL (after
    the route's key check)."""
    accepted = _accepted(request.scope.get("route"))
    unknown = sorted(set(request.query_params) - accepted)
    nul = [n for n, v in request.query_params.multi_items() if "\x00" in v]
    if unknown or nul:
        await _authorised_first(request)
    if unknown:
        names = ", ".join(sorted(accepted)) or "none"
        raise InvalidRequest(
            f"unknown query parameter {', '.join(unknown)} (accepted: {names})",
            unknown=unknown,
            accepted=sorted(accepted),
        )
    if nul:
        raise InvalidRequest(f"query parameter {nul[0]} contains a NUL character")


#: ``FastAPI(dependencies=STRICT_QUERY)``: every route of the application.
STRICT_QUERY = [Depends(strict_query)]

IdPath = Annotated[Int64, Path(description="a registry id")]
OffsetQuery = Annotated[Offset, Query(description="rows to skip")]
FirmIdQuery = Annotated[Int64 | None, Query(description="only this firm's")]

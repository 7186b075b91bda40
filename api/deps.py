"""Request dependencies as `Annotated` aliases: the pool, the sink, the caller."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.problems import Forbidden, Unauthorized, Unavailable
from ingest.sink import IngestSink
from registry.keys import KeyStore, Principal, Role

_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from `meterhub keys create`"
)


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool | None = request.app.state.pool
    if pool is None:
        raise Unavailable("the database is unreachable")
    return pool


def get_sink(request: Request) -> IngestSink:
    sink: IngestSink = request.app.state.sink
    return sink


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SinkDep = Annotated[IngestSink, Depends(get_sink)]


async def get_principal(
    request: Request, pool: PoolDep, key: Annotated[str | None, Security(_api_key)]
) -> Principal:
    if not key:
        raise Unauthorized("send an API key in the X-API-Key header")
    store: KeyStore = request.app.state.keys
    principal = await store.verify(pool, key)
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    request: Request, key: Annotated[str | None, Security(_api_key)]
) -> Principal | None:
    """The caller if it sent a valid key, else None (never an error: for public routes
    that tell a keyed caller more, such as /readyz)."""
    pool: asyncpg.Pool | None = request.app.state.pool
    if not key or pool is None:
        return None
    store: KeyStore = request.app.state.keys
    try:
        return await store.verify(pool, key)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


def allow(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only ``roles`` (403 for any other valid key)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(sorted(roles))
            raise Forbidden(f"a {principal.role} key may not do this (allowed: {allowed})")
        return principal

    return check


READERS = (Role.BUREAU, Role.TOWN, Role.ADMIN)
#: Every key of a person (reference data such as the towns); not the grid feed's.
People = Annotated[Principal, Depends(allow(Role.BUREAU, Role.TOWN, Role.FIELD, Role.ADMIN))]
Reader = Annotated[Principal, Depends(allow(*READERS))]
Bureau = Annotated[Principal, Depends(allow(Role.BUREAU, Role.ADMIN))]
Registrar = Annotated[Principal, Depends(allow(Role.BUREAU, Role.ADMIN, Role.FIELD))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Grid = Annotated[Principal, Depends(allow(Role.GRID))]

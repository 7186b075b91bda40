"""Request dependencies as `Annotated` aliases: the pool, the sink, the caller."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.problems import Forbidden, Unauthorized, Unavailable
from ingest.sink import IngestSink
from registry.errors import KeyLookupUnavailableError
from registry.keys import KeyStore, Principal, Role

_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from `meterhub keys create`"
)


#: Seconds a client is told to wait when the database is away (HTTP Retry-After).
RETRY_AFTER_DATABASE = "5"


def get_optional_pool(request: Request) -> asyncpg.Pool | None:
    """The pool, or None while the database has not been reached since the start."""
    pool: asyncpg.Pool | None = request.app.state.pool
    return pool


def get_pool(request: Request) -> asyncpg.Pool:
    pool = get_optional_pool(request)
    if pool is None:
        raise Unavailable(
            "the database is unreachable", headers={"Retry-After": RETRY_AFTER_DATABASE}
        )
    return pool


def get_sink(request: Request) -> IngestSink:
    sink: IngestSink = request.app.state.sink
    return sink


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
OptionalPoolDep = Annotated[asyncpg.Pool | None, Depends(get_optional_pool)]
SinkDep = Annotated[IngestSink, Depends(get_sink)]


async def get_principal(
    request: Request, pool: OptionalPoolDep, key: Annotated[str | None, Security(_api_key)]
) -> Principal:
    """The caller; keys verified before are still known while the database is away, an
    unverified key then gets 503 with Retry-After (never 401: it may well be valid)."""
    if not key:
        raise Unauthorized("send an API key in the X-API-Key header")
    store: KeyStore = request.app.state.keys
    try:
        principal = await store.verify(pool, key)
    except KeyLookupUnavailableError as exc:
        raise Unavailable(str(exc), headers={"Retry-After": RETRY_AFTER_DATABASE}) from exc
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    request: Request, key: Annotated[str | None, Security(_api_key)]
) -> Principal | None:
    """The caller if it sent a valid key, else None (never an error: for public routes
    that tell a keyed caller more, such as /readyz)."""
    if not key:
        return None
    store: KeyStore = request.app.state.keys
    try:
        return await store.verify(get_optional_pool(request), key)
    except (KeyLookupUnavailableError, asyncpg.PostgresError):
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
#: Readers of the registry and terminal status: the readers and field staff (no town scope).
RegistryReader = Annotated[Principal, Depends(allow(*READERS, Role.FIELD))]
Bureau = Annotated[Principal, Depends(allow(Role.BUREAU, Role.ADMIN))]
Registrar = Annotated[Principal, Depends(allow(Role.BUREAU, Role.ADMIN, Role.FIELD))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Grid = Annotated[Principal, Depends(allow(Role.GRID))]

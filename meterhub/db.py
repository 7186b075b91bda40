"""The database pool every part shares."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from meterhub.errors import DatabaseUnavailableError
from meterhub.settings import Settings, get_settings

#: Errors that mean "the database is not there", as opposed to "it refused this data".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    # A connection whose protocol state broke (seen when its backend was terminated in the
    # middle of a COPY): unusable, like a lost one; its batch is spooled, not refused.
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


async def connect(settings: Settings | None = None, *, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection to the configured database, or `DatabaseUnavailableError`."""
    dsn = (settings or get_settings()).dsn()
    try:
        return await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc


async def create_pool(
    settings: Settings | None = None, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """The shared asyncpg pool (``min_size``..``max_size`` connections)."""
    dsn = (settings or get_settings()).dsn()
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc
    assert pool is not None
    return pool


#: A single connection or one borrowed from the pool: service functions take either.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def fingerprint(conn: Conn | asyncpg.Pool, query: str, *args: object) -> tuple[int, int]:
    """A summary of the rows ``query`` returns, computed by the server: their count and the
    sum of their hashes. It changes when the rows do, so a process that reloads a table
    periodically skips the reload (and the tens of thousands of objects it would build,
    which a collector's event loop and its garbage collector pay for) when nothing did.

    Example: ``await fingerprint(conn, "SELECT id, address FROM meters")`` -> ``(60000, ...)``.
    """
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(hashtextextended(q::text, 0)), 0) AS h "
        f"FROM ({query}) q",
        *args,
    )
    assert row is not None
    return int(row["n"]), int(row["h"])

"""API keys: generation, hashing, revocation, and the lookup that turns a key into a
principal. Only a hash of each key is stored; the secret is shown once, at creation."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import asyncpg

from registry.errors import InvalidError
from registry.towns import canonical_town

KEY_PREFIX = "mh"


class Role(enum.StrEnum):
    GRID = "grid"  # pushes readings for the meters of its own feed
    BUREAU = "bureau"  # reads everything, manages notices, imports registry and output data
    TOWN = "town"  # reads its own town's firms, trends and notices
    FIELD = "field"  # registers and commissions terminals
    ADMIN = "admin"  # keys and registry

    @property
    def scoped(self) -> bool:
        return self in (Role.GRID, Role.TOWN)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's id, name, role and scope (town or feed)."""

    key_id: int
    name: str
    role: Role
    scope: str | None


@dataclass(frozen=True, slots=True)
class NewKey:
    principal: Principal
    key: str  # shown once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    """The lookup prefix of a well-formed key ``mh_<prefix>_<secret>``, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or len(parts[2]) < 20:
        return None
    return parts[1]


async def create_key(
    conn: asyncpg.Connection, *, name: str, role: Role, scope: str | None
) -> NewKey:
    """Create a key; the returned ``key`` text is the only copy of the secret. A town key's
    scope must name a town (short or full name; the short one is stored), else
    `UnknownTownError`."""
    if role.scoped != (scope is not None):
        raise InvalidError(f"a {role} key {'needs' if role.scoped else 'takes no'} scope")
    if role is Role.TOWN and scope is not None:
        scope = await canonical_town(conn, scope)
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    key_id = await conn.fetchval(
        "INSERT INTO api_keys (name, prefix, secret_hash, role, scope) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        name,
        prefix,
        hash_key(key),
        str(role),
        scope,
    )
    return NewKey(Principal(key_id, name, role, scope), key)


async def revoke_key(conn: asyncpg.Connection, prefix_or_id: str) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL "
        "AND (prefix = $1 OR id::text = $1)",
        prefix_or_id,
    )
    return status != "UPDATE 0"


class KeyStore:
    """Verifies keys against the database, caching answers for ``ttl`` seconds (so that a
    revocation takes effect within ``ttl``)."""

    def __init__(self, *, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, pool: asyncpg.Pool, key: str) -> Principal | None:
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        principal = await self._lookup(pool, key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), principal)
        return principal

    async def _lookup(self, pool: asyncpg.Pool, key: str) -> Principal | None:
        prefix = _split(key)
        if prefix is None:
            return None
        row = await pool.fetchrow(
            "UPDATE api_keys SET last_used_at = now() WHERE prefix = $1 AND revoked_at IS NULL "
            "RETURNING id, name, role, scope, secret_hash",
            prefix,
        )
        if row is None or not hmac.compare_digest(row["secret_hash"], hash_key(key)):
            return None
        return Principal(row["id"], row["name"], Role(row["role"]), row["scope"])

"""API keys: generation, hashing, revocation, and the lookup that turns a key into a
principal. Only a hash of each key is stored; the secret is shown once, at creation."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import asyncpg

from meterhub.db import CONNECTION_ERRORS
from meterhub.logs import get_logger
from registry.errors import InvalidError, KeyLookupUnavailableError
from registry.towns import canonical_town

log = get_logger(__name__)

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


#: How long one verified answer is served before the database is asked again (a revocation
#: takes effect within this), and how often a key's last_used_at is written at most.
_TTL = 5.0
_TOUCH_EVERY = 60.0
#: A lookup that takes longer counts as the database being away.
_LOOKUP_TIMEOUT = 2.0
#: After a failed lookup, memory answers for this long without asking the database again.
_PAUSE_AFTER_FAILURE = 1.0
#: Keys found to be unknown or wrong remembered at most (the oldest are forgotten first).
_MAX_UNKNOWN = 10_000


@dataclass(frozen=True, slots=True)
class _Answer:
    principal: Principal | None  # None: unknown, wrong secret or revoked
    verified_at: float


class KeyStore:
    """Verifies keys against the database and remembers the answers.

    An answer is reused for ``ttl`` seconds (a revocation takes effect within ``ttl``).
    While the database is unreachable the last verified answer of a key is served however
    old it is (a key revoked before the outage stays refused); a key not verified since the
    process started raises `KeyLookupUnavailableError` (HTTP: 503 with Retry-After). The
    secret is checked before anything is written; ``last_used_at`` is written at most once
    per ``touch_every`` seconds per key, and not at all while the database is away."""

    def __init__(
        self,
        *,
        ttl: float = _TTL,
        touch_every: float = _TOUCH_EVERY,
        timeout: float = _LOOKUP_TIMEOUT,
        max_unknown: int = _MAX_UNKNOWN,
    ) -> None:
        self._ttl, self._touch_every, self._timeout = ttl, touch_every, timeout
        self._max_unknown = max_unknown
        self._known: dict[str, _Answer] = {}  # by key hash; one per real key, so bounded
        self._unknown: dict[str, _Answer] = {}  # by key hash, oldest first
        self._touched: dict[int, float] = {}
        self._pause_until = 0.0

    async def verify(self, pool: asyncpg.Pool | None, key: str) -> Principal | None:
        """The key's principal, or None if the key is malformed, unknown or revoked.
        ``pool`` None means the database has not been reached yet."""
        if _split(key) is None:
            return None
        digest = hash_key(key)
        answer = self._known.get(digest) or self._unknown.get(digest)
        now = time.monotonic()
        if answer is not None and now - answer.verified_at < self._ttl:
            return answer.principal
        if pool is not None and now >= self._pause_until:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._lookup(pool, key, digest)
            except CONNECTION_ERRORS as exc:
                self._pause_until = time.monotonic() + _PAUSE_AFTER_FAILURE
                log.debug("key lookup failed; answering from memory", error=type(exc).__name__)
        if answer is not None:
            return answer.principal
        raise KeyLookupUnavailableError(
            "the database is unreachable and this key has not been verified since the "
            "service started"
        )

    async def _lookup(self, pool: asyncpg.Pool, key: str, digest: str) -> Principal | None:
        row = await pool.fetchrow(
            "SELECT id, name, role, scope, secret_hash, revoked_at IS NOT NULL AS revoked "
            "FROM api_keys WHERE prefix = $1",
            _split(key),
        )
        now = time.monotonic()
        if row is None or not hmac.compare_digest(row["secret_hash"], digest):
            self._unknown.pop(digest, None)
            self._unknown[digest] = _Answer(None, now)
            while len(self._unknown) > self._max_unknown:
                del self._unknown[next(iter(self._unknown))]
            return None
        principal = None
        if not row["revoked"]:
            principal = Principal(row["id"], row["name"], Role(row["role"]), row["scope"])
        self._known[digest] = _Answer(principal, now)
        if principal is not None:
            await self._touch(pool, principal.key_id, now)
        return principal

    async def _touch(self, pool: asyncpg.Pool, key_id: int, now: float) -> None:
        if now - self._touched.get(key_id, -self._touch_every) < self._touch_every:
            return
        self._touched[key_id] = now
        try:
            await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)
        except CONNECTION_ERRORS:
            log.debug("last_used_at not written (database away)", key_id=key_id)

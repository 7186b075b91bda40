"""Meter codes (the numbers on the grid company's feed) to meter ids, per feed: the lookup
injected into `collectors.gridfeed.codec.feed_readings` (``ids`` and the resolver itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import asyncpg

from collectors.gridfeed.errors import MeterLookupUnavailableError
from ingest.quarantine import Reason
from meterhub.db import CONNECTION_ERRORS
from meterhub.logs import get_logger

log = get_logger(__name__)

#: Registered codes remembered at most (far above a city's meters), and codes found to be
#: unknown (a feed sending ever new unknown codes forgets the oldest first).
_MAX_KNOWN = 200_000
_MAX_UNKNOWN = 100_000
#: A lookup that takes longer counts as the database being away.
_LOOKUP_TIMEOUT = 2.0
#: After a failed lookup, memory answers for this long without asking the database again.
_PAUSE_AFTER_FAILURE = 1.0


class FeedMeters:
    """Remembers code -> (meter id, feed) and the codes that are no meter's, each for ``ttl``
    seconds before asking again. While the database is unreachable the last answers are
    used however old they are, so known (and known unknown) codes keep flowing to the spool;
    a batch with a code never looked up raises `MeterLookupUnavailableError`."""

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        timeout: float = _LOOKUP_TIMEOUT,
        max_unknown: int = _MAX_UNKNOWN,
    ) -> None:
        self._ttl, self._timeout, self._max_unknown = ttl, timeout, max_unknown
        self._known: dict[str, tuple[float, int, str | None]] = {}
        self._unknown: dict[str, float] = {}
        self._pause_until = 0.0
        self.queries = 0  # database lookups so far

    def _checked_at(self, code: str) -> float | None:
        known = self._known.get(code)
        return known[0] if known is not None else self._unknown.get(code)

    async def resolver(
        self, pool: asyncpg.Pool | None, *, feed: str, codes: Iterable[str]
    ) -> FeedResolver:
        """What ``codes`` are to ``feed``: their meter ids, or why they are refused.
        ``pool`` None means the database has not been reached yet."""
        now = time.monotonic()
        codes = set(codes)
        stale = []
        for code in codes:
            checked = self._checked_at(code)
            if checked is not None and now - checked < self._ttl:
                continue
            if "\x00" in code:  # no meter has one, and the database would refuse the query
                self._remember_unknown(code, now)
            else:
                stale.append(code)
        if stale and not await self._refresh(pool, stale):
            unseen = [c for c in stale if self._checked_at(c) is None]
            if unseen:
                raise MeterLookupUnavailableError(
                    f"the database is unreachable and {len(unseen)} meter code(s) of the batch "
                    "have not been looked up since the service started"
                )
        known: dict[str, tuple[int | None, str | None]] = {}
        for code in codes:
            entry = self._known.get(code)
            known[code] = (entry[1], entry[2]) if entry is not None else (None, None)
        return FeedResolver(feed, known)

    async def _refresh(self, pool: asyncpg.Pool | None, codes: list[str]) -> bool:
        """Look ``codes`` up; False if the database could not be asked."""
        if pool is None or time.monotonic() < self._pause_until:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                rows = await pool.fetch(
                    "SELECT code, id, CASE WHEN protocol = 'grid-feed' THEN address ->> 'feed' "
                    "END AS feed FROM meters WHERE code = ANY($1::text[])",
                    codes,
                )
        except CONNECTION_ERRORS as exc:
            self._pause_until = time.monotonic() + _PAUSE_AFTER_FAILURE
            log.debug("meter lookup failed; answering from memory", error=type(exc).__name__)
            return False
        self.queries += 1
        now = time.monotonic()
        found = {r["code"]: (now, r["id"], r["feed"]) for r in rows}
        for code in codes:
            if code in found:
                self._unknown.pop(code, None)
                self._known.pop(code, None)
                self._known[code] = found[code]
            else:
                self._known.pop(code, None)
                self._remember_unknown(code, now)
        while len(self._known) > _MAX_KNOWN:
            del self._known[next(iter(self._known))]
        return True

    def _remember_unknown(self, code: str, now: float) -> None:
        self._unknown.pop(code, None)
        self._unknown[code] = now
        while len(self._unknown) > self._max_unknown:
            del self._unknown[next(iter(self._unknown))]


class FeedResolver:
    """Codes -> meter ids for one feed; ``ids`` holds only the codes the feed may push."""

    def __init__(self, feed: str, known: dict[str, tuple[int | None, str | None]]) -> None:
        self._known = known
        self.ids = {
            code: meter_id
            for code, (meter_id, meter_feed) in known.items()
            if meter_id is not None and meter_feed == feed
        }

    def __call__(self, code: str) -> int | Reason:
        meter_id = self.ids.get(code)
        if meter_id is not None:
            return meter_id
        found, _ = self._known.get(code, (None, None))
        return Reason.UNKNOWN_METER if found is None else Reason.NOT_IN_FEED

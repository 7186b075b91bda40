"""Meter codes (the numbers on the grid company's feed) to meter ids, per feed: the lookup
injected into `collectors.gridfeed.codec.feed_readings` (``ids`` and the resolver itself)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import asyncpg

from ingest.quarantine import Reason

#: Codes remembered at most (far above a city's meters).
_MAX_CACHED = 200_000


class FeedMeters:
    """Caches code -> (meter id, feed) lookups for ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._known: dict[str, tuple[float, int | None, str | None]] = {}

    async def resolver(
        self, pool: asyncpg.Pool, *, feed: str, codes: Iterable[str]
    ) -> FeedResolver:
        """What ``codes`` are to ``feed``: their meter ids, or why they are refused."""
        now = time.monotonic()
        if len(self._known) > _MAX_CACHED:  # a feed sending ever new unknown codes
            self._known.clear()
        codes = list(codes)
        missing = [c for c in codes if c not in self._known or now - self._known[c][0] > self._ttl]
        # A code with a NUL is unknown without asking: no meter has one, and the database
        # would refuse the whole query.
        storable = [c for c in missing if "\x00" not in c]
        found: dict[str, tuple[float, int | None, str | None]] = {}
        if storable:
            rows = await pool.fetch(
                "SELECT code, id, CASE WHEN protocol = 'grid-feed' THEN address ->> 'feed' END "
                "AS feed FROM meters WHERE code = ANY($1::text[])",
                storable,
            )
            found = {r["code"]: (now, r["id"], r["feed"]) for r in rows}
        for code in missing:
            self._known[code] = found.get(code, (now, None, None))

        known = {code: self._known[code][1:] for code in codes}
        return FeedResolver(feed, known)


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

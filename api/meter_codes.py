"""Meter codes (the numbers on the grid company's feed) to meter ids, per feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import asyncpg

from ingest.quarantine import Reason


class FeedMeters:
    """Caches code -> (meter id, feed) lookups for ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._known: dict[str, tuple[float, int | None, str | None]] = {}

    async def resolver(
        self, pool: asyncpg.Pool, *, feed: str, codes: Iterable[str]
    ) -> Callable[[str], int | Reason]:
        now = time.monotonic()
        missing = [c for c in codes if c not in self._known or now - self._known[c][0] > self._ttl]
        if missing:
            rows = await pool.fetch(
                "SELECT code, id, CASE WHEN protocol = 'grid-feed' THEN address ->> 'feed' END "
                "AS feed FROM meters WHERE code = ANY($1::text[])",
                missing,
            )
            found = {r["code"]: (now, r["id"], r["feed"]) for r in rows}
            for code in missing:
                self._known[code] = found.get(code, (now, None, None))

        def resolve(code: str) -> int | Reason:
            _, meter_id, meter_feed = self._known[code]
            if meter_id is None:
                return Reason.UNKNOWN_METER
            if meter_feed != feed:
                return Reason.NOT_IN_FEED
            return meter_id

        return resolve

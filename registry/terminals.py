"""Terminal health per active meter: online/offline, last reading, last error, clock drift."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel

from meterhub.db import Conn


class Terminal(BaseModel):
    meter_id: int
    code: str
    firm_id: int
    firm: str
    town: str
    protocol: str
    online: bool | None
    consecutive_failures: int | None
    last_reading_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    clock_drift_s: float | None


_SELECT = """
SELECT m.id AS meter_id, m.code, f.id AS firm_id, f.name AS firm, f.town, m.protocol,
       s.online, s.consecutive_failures, s.last_attempt_at, s.last_error, s.clock_drift_s,
       (SELECT max(r.ts) FROM readings r WHERE r.meter_id = m.id
          AND r.ts > now() - interval '7 days') AS last_reading_at
FROM meters m
JOIN firms f ON f.id = m.firm_id
LEFT JOIN terminal_status s ON s.meter_id = m.id
WHERE m.removed_at IS NULL
  AND ($1::text IS NULL OR f.town = $1)
  AND ($2::bigint IS NULL OR f.id = $2)
  AND ($3::boolean IS NULL OR s.online = $3)
ORDER BY s.online NULLS LAST, f.town, f.name, m.code
"""


async def list_terminals(
    conn: Conn | asyncpg.Pool, *, town: str | None, firm_id: int | None, online: bool | None
) -> list[Terminal]:
    """Active meters of ``town`` / ``firm_id`` (None: any), offline ones first."""
    rows = await conn.fetch(_SELECT, town, firm_id, online)
    return [Terminal(**dict(r)) for r in rows]

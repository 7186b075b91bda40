"""Terminal status for the bureau and towns: online/offline, last reading, clock drift."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import PoolDep, Reader
from api.problems import Forbidden, Unauthorized, responses
from registry.scope import town_filter
from registry.towns import optional_town

router = APIRouter(prefix="/v1/terminals", tags=["operations"])


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


class TerminalPage(BaseModel):
    total: int
    online: int
    offline: int
    unknown: int
    items: list[Terminal]


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


@router.get(
    "",
    summary="Terminals and their health",
    description="Per active meter: online/offline (offline after consecutive failed polls), "
    "the last reading in the past week, the last error and the meter clock's drift. A town "
    "key sees only its own town. `online=false` lists the offline ones.",
    responses=responses(Unauthorized, Forbidden),
)
async def list_terminals(
    principal: Reader,
    pool: PoolDep,
    town: Annotated[str | None, Query(description="镇街 (苏溪 or 苏溪镇)")] = None,
    firm_id: Annotated[int | None, Query()] = None,
    online: Annotated[bool | None, Query(description="filter by state")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TerminalPage:
    town = town_filter(principal, await optional_town(pool, town))
    rows = await pool.fetch(_SELECT, town, firm_id, online)
    items = [Terminal(**dict(r)) for r in rows]
    return TerminalPage(
        total=len(items),
        online=sum(1 for t in items if t.online),
        offline=sum(1 for t in items if t.online is False),
        unknown=sum(1 for t in items if t.online is None),
        items=items[offset : offset + limit],
    )

"""Terminal status for the bureau, towns and field staff: online/offline with the reason, last
reading, clock drift; and the commissioning check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import PoolDep, RegistryReader
from api.params import FirmIdQuery, OffsetQuery
from api.problems import Forbidden, Unauthorized, responses
from registry import terminals as service
from registry.scope import town_filter
from registry.terminals import Terminal
from registry.towns import optional_town

router = APIRouter(prefix="/v1/terminals", tags=["operations"])


class TerminalPage(BaseModel):
    total: int
    online: int
    offline: int
    unknown: int
    items: list[Terminal]


@router.get(
    "",
    summary="Terminals and their health",
    description="Per active meter: online/offline and why (`reason`). A polled terminal "
    "(Modbus, DL/T 645) is offline after consecutive failed polls, and never online before "
    "it has answered one; a pushing one (MQTT, the grid feed) is online while a reading "
    "arrived within twice its interval plus 5 min, else offline with `no reading since ...` "
    "(`status_from` says which). Also the last reading in the past week, the last poll error "
    "and the meter clock's drift. A town key sees only its own town, a field key all. "
    "`online=false` lists the offline ones.",
    responses=responses(Unauthorized, Forbidden),
)
async def list_terminals(
    principal: RegistryReader,
    pool: PoolDep,
    town: Annotated[str | None, Query(description="镇街 (苏溪 or 苏溪镇)")] = None,
    firm_id: FirmIdQuery = None,
    online: Annotated[bool | None, Query(description="filter by state")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: OffsetQuery = 0,
) -> TerminalPage:
    town = town_filter(principal, await optional_town(pool, town))
    items = await service.list_terminals(pool, town=town, firm_id=firm_id, online=online)
    return TerminalPage(
        total=len(items),
        online=sum(1 for t in items if t.online),
        offline=sum(1 for t in items if t.online is False),
        unknown=sum(1 for t in items if t.online is None),
        items=items[offset : offset + limit],
    )

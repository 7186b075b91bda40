"""Terminal status for the bureau, towns and field staff: online/offline with the reason, last
reading, clock drift; and the commissioning check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.deps import PoolDep, Registrar, RegistryReader
from api.params import FirmIdQuery, IdPath, OffsetQuery
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from collectors.commissioning import CheckReport
from collectors.networks import DialPolicy
from meterhub.settings import Settings
from registry import terminals as service
from registry.scope import town_filter
from registry.terminals import Terminal
from registry.towns import optional_town

router = APIRouter(tags=["operations"])


class TerminalPage(BaseModel):
    total: int
    online: int
    offline: int
    unknown: int
    items: list[Terminal]


@router.get(
    "/v1/terminals",
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


@router.post(
    "/v1/meters/{meter_id}/check",
    summary="Commissioning check: poll a terminal once",
    description="Polls a Modbus or DL/T 645 terminal once through the collectors' readers "
    "(only inside `MHUB_COLLECT_NETWORKS`) and shows what it read (meter side, before CT x "
    "PT), what the meter refused and why, what came back unusable, and its clock; for "
    "DL/T 645 also the address the meter gives for the read-address command (0x13), whether "
    "it is the registered one and in which byte order the 12 digits travel. Nothing read is "
    "stored. A meter that pushes (MQTT, grid feed) is a 422: see `GET /v1/terminals`.",
    responses=responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidRequest),
)
async def check_meter(
    request: Request,
    meter_id: IdPath,
    principal: Registrar,
    pool: PoolDep,
    timeout: Annotated[float, Query(gt=0, le=10, description="seconds per request")] = 2.0,
) -> CheckReport:
    settings: Settings = request.app.state.settings
    policy = DialPolicy(settings.collect_network_list)
    return await service.check_meter(
        pool, meter_id, principal=principal, policy=policy, timeout=timeout
    )

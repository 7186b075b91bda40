"""The registry: meters and terminals, and meter replacement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import PoolDep, Reader, Registrar, RegistryReader
from api.params import FirmIdQuery, IdPath, OffsetQuery
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from collectors.networks import DialPolicy
from meterhub.settings import Settings
from registry import firms as firm_service
from registry import meter_history
from registry import meters as service
from registry.scope import town_filter

router = APIRouter(prefix="/v1/meters", tags=["registry"])


def _policy(request: Request) -> DialPolicy:
    settings: Settings = request.app.state.settings
    return DialPolicy(settings.collect_network_list)


@router.get(
    "",
    summary="List meters (of one firm, or all)",
    description="404 when `firm_id` names no firm the key may read.",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def list_meters(
    principal: RegistryReader,
    pool: PoolDep,
    firm_id: FirmIdQuery = None,
    active: Annotated[bool, Query(description="only meters not removed")] = True,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: OffsetQuery = 0,
) -> list[service.Meter]:
    if firm_id is not None:
        await firm_service.readable_firm(pool, principal=principal, firm_id=firm_id)
    town = town_filter(principal, None)
    return await service.list_meters(
        pool, firm_id=firm_id, town=town, active=active, limit=limit, offset=offset
    )


@router.get(
    "/{meter_id}", summary="One meter", responses=responses(Unauthorized, Forbidden, NotFound)
)
async def get_meter(meter_id: IdPath, principal: RegistryReader, pool: PoolDep) -> service.Meter:
    meter = await service.get_meter(pool, meter_id)
    await firm_service.readable_firm(pool, principal=principal, firm_id=meter.firm_id)
    return meter


@router.post(
    "",
    status_code=201,
    summary="Register a meter (commission a terminal)",
    description="A Modbus host or a DL/T 645 `tcp://` bus must lie in `MHUB_COLLECT_NETWORKS` "
    "(default: this machine only); otherwise 422 `address_not_allowed`.",
    responses=responses(Unauthorized, Forbidden, Conflict, InvalidRequest),
)
async def create_meter(
    request: Request, body: service.MeterIn, principal: Registrar, pool: PoolDep
) -> service.Meter:
    policy = _policy(request)
    async with pool.acquire() as conn:
        return await service.create_meter(conn, principal=principal, meter=body, policy=policy)


@router.post(
    "/{meter_id}/replace",
    status_code=201,
    summary="Replace a meter",
    description="Closes the meter at `at` and opens its successor (same firm, utility and, "
    "unless given, address, model and ratios) from `at`. The firm's consumption series stays "
    "continuous: `old_final_energy` (the old register at the swap) closes the old meter's last "
    "interval pair and `new_initial_energy` opens the new one's, both stored as readings with "
    "source `swap`. Leave one out only when it is unknown: that side's energy is then lost and "
    "an `unknown_swap_energy` interval event at `at` says so. 409 if a meter already has a "
    "different reading at `at`. What the body gives is checked as at registration: a new "
    "`address` must fit the protocol and lie in `MHUB_COLLECT_NETWORKS` (else 422 "
    "`address_not_allowed`), a new `model` must be a known one. What the successor keeps of "
    "the old meter is taken as stored, not checked again (it may predate today's rules).",
    responses=responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidRequest),
)
async def replace_meter(
    request: Request,
    meter_id: IdPath,
    body: service.Replacement,
    principal: Registrar,
    pool: PoolDep,
) -> service.Meter:
    # The ingest sinks hear of the swap (NOTIFY) and refuse later pushes for the old meter.
    policy = _policy(request)
    async with pool.acquire() as conn:
        return await service.replace_meter(
            conn, principal=principal, meter_id=meter_id, swap=body, policy=policy
        )


@router.get(
    "/{meter_id}/ratios",
    summary="A meter's CT/PT ratio periods",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def list_ratios(
    meter_id: IdPath, principal: Reader, pool: PoolDep
) -> list[meter_history.RatioPeriod]:
    meter = await service.get_meter(pool, meter_id)
    await firm_service.readable_firm(pool, principal=principal, firm_id=meter.firm_id)
    async with pool.acquire() as conn:
        return await meter_history.ratio_periods(conn, meter_id)


@router.post(
    "/{meter_id}/ratios",
    status_code=201,
    summary="Change a meter's CT/PT ratio from a given time",
    description="Records the ratio holding from `valid_from` until the meter's next period (a "
    "period starting at the same time is replaced); an omitted ratio keeps the one valid then. "
    "Intervals are derived with the ratio valid at each interval's start, so the readings "
    "from `valid_from` on are derived again (late ones in old windows too) and their rollups "
    "follow. The meter's own `ct_ratio`/`pt_ratio` are its latest period's. Returns all periods.",
    responses=responses(Unauthorized, Forbidden, NotFound, InvalidRequest),
)
async def change_ratio(
    meter_id: IdPath, body: meter_history.RatioChange, principal: Registrar, pool: PoolDep
) -> list[meter_history.RatioPeriod]:
    async with pool.acquire() as conn:
        return await meter_history.change_ratio(
            conn, principal=principal, meter_id=meter_id, change=body
        )

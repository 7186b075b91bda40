"""Reference data: Yiwu's towns and streets."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import People, PoolDep
from api.params import STRICT_QUERY
from api.problems import Forbidden, Unauthorized, responses
from registry.towns import Town, list_towns

router = APIRouter(prefix="/v1/towns", tags=["registry"], dependencies=STRICT_QUERY)


@router.get(
    "",
    summary="Yiwu's towns and streets (镇街)",
    description="The 14 towns and streets a firm's `town` and a town key's scope name: the "
    "short name as stored (苏溪; the full name 苏溪镇 is accepted on input), the kind (street "
    "街道 or town 镇) and the unit that receives notices. Reference data: every key but a grid "
    "feed's may read it.",
    responses=responses(Unauthorized, Forbidden),
)
async def get_towns(principal: People, pool: PoolDep) -> list[Town]:
    return await list_towns(pool)

"""Campaign progress against the plan's targets (`alerts.campaign`). The bureau and admin
see the city and every town; a town key sees its own town's figures and the list of
targets, never the city's or another town's numbers."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from alerts.campaign import progress
from alerts.campaign_targets import CampaignConfig, load
from alerts.profile import last_whole_week
from api.deps import PoolDep, Reader
from api.problems import Conflict, Forbidden, InvalidRequest, Unauthorized, responses
from meterhub.settings import Settings
from registry.fields import FIRST_DAY, LAST_DAY
from registry.scope import town_filter
from registry.towns import optional_town

router = APIRouter(tags=["analytics"])


@cache
def campaign_config() -> CampaignConfig:
    """The campaign file, read once (a dependency: tests may override it)."""
    return load()


ConfigDep = Annotated[CampaignConfig, Depends(campaign_config)]

_FIGURE = {
    "target": 300.0,
    "measured": 12,
    "share_of_target": 0.04,
    "unit": "firms",
    "basis": "other firms with cases of d_two_years, ... resolved from 2021-01-01 through "
    "the week of 2026-11-23, none of them still open",
    "as_of": "2026-11-29",
    "firm_ids": [42],
    "case_ids": [7],
    "this_year": 5,
}
EXAMPLE: dict[str, Any] = {
    "week": "2026-11-23",
    "as_of": "2026-11-29",
    "scope": "苏溪",
    "plan": {
        "title": "义乌市新一轮制造业“腾笼换鸟、凤凰涅槃”攻坚行动方案（2021-2023）",
        "status": "征求意见稿",
        "source": "seed 000_f62c9ab4c9421d0c.txt, 二、实施目标",
        "start": "2021-01-01",
        "end": "2023-12-31",
        "count_from": "2021-01-01",
    },
    "targets": [
        {
            "code": "rectified",
            "zh": "整治提升企业",
            "en": "Firms rectified",
            "target": 300.0,
            "unit": "firms",
            "quote": "整治提升300家",
            "source": "seed 000_f62c9ab4c9421d0c.txt, 二、实施目标",
        }
    ],
    "city": None,
    "towns": [{"town": "苏溪", "figures": {"rectified": _FIGURE}}],
}


class CampaignOut(BaseModel):
    week: date
    as_of: date
    scope: str
    plan: dict[str, Any]
    targets: list[dict[str, Any]]
    city: dict[str, dict[str, Any]] | None
    towns: list[dict[str, Any]]


@router.get(
    "/v1/campaign",
    summary="Campaign progress against the plan's targets, by town and for the city",
    description="Each target (firms eliminated and rectified, land mu, tce freed, t CO2 cut, "
    "per-mu tax and value added, intensity change) with target, measured, share_of_target, "
    "unit, basis, as_of and the ids it rests on. A town key (or `town=`) gets that town "
    "only: `city` is null.",
    response_model=CampaignOut,
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        **responses(Unauthorized, Forbidden, Conflict, InvalidRequest),
    },
)
async def campaign_progress(
    request: Request,
    principal: Reader,
    pool: PoolDep,
    config: ConfigDep,
    week: Annotated[
        date | None,
        Query(
            ge=FIRST_DAY,
            le=LAST_DAY,
            description="the Monday of the week (default: the last whole week)",
        ),
    ] = None,
    town: Annotated[
        str | None, Query(max_length=50, description="镇街; a town key: its own only")
    ] = None,
) -> dict[str, Any]:
    scoped = town_filter(principal, await optional_town(pool, town))
    settings: Settings = request.app.state.settings
    async with pool.acquire() as conn:
        return await progress(
            conn,
            week=week or last_whole_week(date.today()),
            town=scoped,
            settings=settings,
            config=config,
        )

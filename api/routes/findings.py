"""Findings of the weekly analytics, for the bureau (all towns) and towns (their own)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from alerts.listing import Filters, list_findings
from alerts.rulebook import CODES, Rulebook
from api.deps import PoolDep, Reader
from api.params import FirmIdQuery
from api.problems import Forbidden, InvalidRequest, Unauthorized, responses
from registry.scope import town_filter

router = APIRouter(prefix="/v1/findings", tags=["analytics"])

Severity = Literal["info", "low", "medium", "high"]
Status = Literal["open", "closed"]


class Finding(BaseModel):
    id: int
    firm_id: int
    firm: str
    credit_code: str
    rule: str
    severity: Severity
    town: str
    industry: str
    first_week: date
    last_week: date
    weeks: int
    status: Status
    closed_week: date | None
    evidence: dict[str, Any]
    text: str
    text_en: str


class FindingPage(BaseModel):
    total: int
    items: list[Finding]


@router.get(
    "",
    response_model=FindingPage,
    summary="Findings of the weekly rules, newest and most severe first",
    responses=responses(Unauthorized, Forbidden, InvalidRequest),
)
async def findings(
    request: Request,
    principal: Reader,
    pool: PoolDep,
    town: Annotated[str | None, Query(max_length=50)] = None,
    rule: Annotated[str | None, Query(description=f"one of {', '.join(CODES)}")] = None,
    severity: Severity | None = None,
    industry: Annotated[str | None, Query(pattern="^[A-T][0-9]{0,4}$")] = None,
    week: Annotated[
        date | None, Query(description="findings open during the week starting on this Monday")
    ] = None,
    status: Status | None = None,
    firm_id: FirmIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> FindingPage:
    if rule is not None and rule not in CODES:
        raise InvalidRequest(f"unknown rule {rule!r}; rules: {', '.join(CODES)}")
    if week is not None and week.isoweekday() != 1:
        raise InvalidRequest(f"week must be a Monday, not {week}")
    book: Rulebook = request.app.state.rulebook
    filters = Filters(
        town=town_filter(principal, town),
        rule=rule,
        severity=severity,
        industry=industry,
        week=week,
        status=status,
        firm_id=firm_id,
    )
    async with pool.acquire() as conn:
        total, items = await list_findings(
            conn, filters=filters, rulebook=book, limit=limit, offset=offset
        )
    return FindingPage(total=total, items=[Finding(**i) for i in items])

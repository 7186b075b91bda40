"""The weekly rectification notices: list, read (a town its own part), items with filters,
generation, and the lifecycle of their cases."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alerts.calendar import parse_week
from alerts.notices import exports, lifecycle, reading
from alerts.notices.config import NoticeConfig
from alerts.notices.generate import generate
from alerts.rulebook import Rulebook
from api.deps import Bureau, PoolDep, Reader
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings
from registry.keys import Principal
from registry.scope import town_filter

router = APIRouter(tags=["notices"])

Status = Literal["issued", "acknowledged", "rectifying", "resolved", "escalated"]
Colour = Literal["none", "blue", "yellow", "red", "green"]
Action = Literal["acknowledge", "feedback", "resolve", "escalate"]
WeekPath = Annotated[
    str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$", description="ISO week, e.g. 2026-W48")
]


def _monday(week: str) -> date:
    try:
        return parse_week(week).astimezone(LOCAL_TZ).date()
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


class NoticeSummary(BaseModel):
    week: date
    revision: int
    number: str
    issued_at: datetime
    summary: dict[str, Any]


class Notice(BaseModel):
    week: date
    revision: int
    number: str
    issued_at: datetime
    changes: list[dict[str, Any]] = Field(description="what differs from the revision before")
    content: dict[str, Any] = Field(description="header, summary, towns with their items")


class Issued(BaseModel):
    week: date
    revision: int
    number: str
    new: bool = Field(description="false: the data had not changed, the revision stands")
    changes: list[dict[str, Any]]


class TransitionIn(BaseModel):
    action: Action
    note: str | None = Field(default=None, max_length=2000)
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="e.g. document numbers, photo references"
    )


class Case(BaseModel):
    id: int
    firm_id: int
    problem: str
    town: str
    status: Status
    first_week: date
    last_week: date
    episode_week: date
    deadline: date
    reopened: int
    resolved_week: date | None
    resolved_basis: str | None


class CaseEvent(BaseModel):
    id: int
    at: datetime
    week: date | None
    action: str
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    evidence: dict[str, Any]


class CaseHistory(BaseModel):
    case: Case
    events: list[CaseEvent]
    allowed: list[str] = Field(description="the actions this key may take now")


def _actor(principal: Principal) -> lifecycle.Actor:
    return lifecycle.Actor(
        role=str(principal.role),
        name=principal.name,
        key_id=principal.key_id,
        town=principal.scope if str(principal.role) == "town" else None,
    )


@router.get(
    "/v1/notices",
    response_model=list[NoticeSummary],
    summary="Issued notices, newest week first (each week's latest revision)",
    responses=responses(Unauthorized, Forbidden),
)
async def notices(
    principal: Reader,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=520)] = 52,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        found = await reading.list_notices(conn, limit=limit, offset=offset)
    town = town_filter(principal, None)
    if town is not None:
        for notice in found:
            notice["summary"] = {"town": town}  # a town reads its own part's summary only
    return found


@router.get(
    "/v1/notices/{week}",
    response_model=Notice,
    summary="One week's notice (the latest revision unless `revision`); a town key gets its "
    "own town's part",
    responses=responses(Unauthorized, Forbidden, NotFound, InvalidRequest),
)
async def notice(
    week: WeekPath,
    principal: Reader,
    pool: PoolDep,
    revision: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    town: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    scoped = town_filter(principal, town)
    async with pool.acquire() as conn:
        return await reading.read(conn, week=_monday(week), revision=revision, town=scoped)


@router.get(
    "/v1/notices/{week}/items",
    summary="The items of a week's notice, filtered",
    responses=responses(Unauthorized, Forbidden, NotFound, InvalidRequest),
)
async def notice_items(
    week: WeekPath,
    principal: Reader,
    pool: PoolDep,
    town: Annotated[str | None, Query(max_length=20)] = None,
    status: Status | None = None,
    colour: Colour | None = None,
    problem: Annotated[str | None, Query(max_length=40)] = None,
    overdue: bool | None = None,
) -> list[dict[str, Any]]:
    scoped = town_filter(principal, town)
    async with pool.acquire() as conn:
        found = await reading.read(conn, week=_monday(week), revision=None, town=scoped)
    filters = reading.ItemFilters(
        town=scoped, status=status, colour=colour, problem=problem, overdue=overdue
    )
    return reading.items(found["content"], filters)


@router.get(
    "/v1/notices/{week}/export",
    summary="A week's notice as printable HTML (A4, one town per page), XLSX (a summary "
    "sheet and one per town) or JSON; a town key downloads its own town's part",
    response_class=Response,
    responses={
        **responses(Unauthorized, Forbidden, NotFound, InvalidRequest),
        200: {
            "description": "the file, with an ASCII file name and a Chinese filename*",
            "content": {k.media_type.split(";")[0]: {} for k in exports.Kind},
        },
    },
)
async def export_notice(
    week: WeekPath,
    principal: Reader,
    pool: PoolDep,
    format: exports.Kind = exports.Kind.HTML,
    revision: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    town: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    scoped = town_filter(principal, town)
    async with pool.acquire() as conn:
        found = await reading.read(conn, week=_monday(week), revision=revision, town=None)
    document = found["content"]
    body = await asyncio.to_thread(exports.render, format, document, scoped)
    disposition = exports.content_disposition(
        format, document, revision=found["revision"], town=scoped
    )
    return Response(
        body, media_type=format.media_type, headers={"Content-Disposition": disposition}
    )


@router.post(
    "/v1/notices/{week}/generate",
    response_model=Issued,
    summary="Generate (or regenerate) a week's notice: unchanged data issues nothing new, "
    "changed data a new revision listing the changes",
    responses=responses(Unauthorized, Forbidden, Conflict, InvalidRequest),
)
async def generate_notice(
    week: WeekPath, request: Request, principal: Bureau, pool: PoolDep
) -> dict[str, Any]:
    config: NoticeConfig = request.app.state.notice_config
    book: Rulebook = request.app.state.rulebook
    settings: Settings = request.app.state.settings
    issued = await generate(
        pool, week=_monday(week), config=config, rulebook=book, settings=settings
    )
    return {
        "week": issued.week,
        "revision": issued.revision,
        "number": issued.number,
        "new": issued.new,
        "changes": issued.changes,
    }


@router.get(
    "/v1/notice-cases/{case_id}",
    response_model=CaseHistory,
    summary="A case with its whole history and the actions this key may take",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def case(
    case_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: Reader, pool: PoolDep
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        found, events = await reading.case_history(conn, case_id)
    actor = _actor(principal)
    if actor.town is not None and found["town"] != actor.town:
        raise Forbidden(f"a key for {actor.town} may not read cases of {found['town']}")
    return {"case": found, "events": events, "allowed": lifecycle.allowed(found["status"], actor)}


@router.post(
    "/v1/notice-cases/{case_id}/transitions",
    response_model=Case,
    summary="Acknowledge, give feedback on, resolve or escalate a case",
    description="A town key acts on its own town's cases (acknowledge, feedback, resolve); "
    "bureau and admin keys on all, and only they escalate. A refused transition is 409 and "
    "names the allowed actions; resolving needs a note and a metered check (the problem's "
    "rules clean for the configured weeks, or the firm closed down).",
    responses=responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidRequest),
)
async def case_transition(
    case_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: TransitionIn,
    request: Request,
    principal: Reader,
    pool: PoolDep,
) -> dict[str, Any]:
    config: NoticeConfig = request.app.state.notice_config
    async with pool.acquire() as conn, conn.transaction():
        return await lifecycle.transition(
            conn,
            case_id=case_id,
            action=body.action,
            actor=_actor(principal),
            note=body.note,
            evidence=body.evidence,
            config=config,
            today=lifecycle.local_today(),
        )

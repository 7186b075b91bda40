"""A firm's dated list memberships and its projects. The lists, not the firm's undated
``tags`` (still readable on the firm), are what the weekly rules count."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Bureau, PoolDep, Reader
from api.params import IdPath
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.routes.sheets import add_import
from registry.firms import readable_firm
from registry.reference import lists, projects

router = APIRouter(prefix="/v1/firms", tags=["registry"])
_READ = responses(Unauthorized, Forbidden, NotFound)
_WRITE = responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidRequest)


@router.get("/{firm_id}/lists", summary="A firm's list memberships", responses=_READ)
async def list_memberships(
    firm_id: IdPath, principal: Reader, pool: PoolDep
) -> list[lists.Membership]:
    """Every membership, ended or not: D-class, unrectified D-class, high energy user, land
    to reclaim, each from ``since`` until the day before ``until``."""
    await readable_firm(pool, principal=principal, firm_id=firm_id)
    return await lists.list_memberships(pool, firm_id)


@router.post(
    "/{firm_id}/lists",
    status_code=201,
    summary="Put a firm on a list",
    description="409 if the firm is on that list over any of the same days. Audited.",
    responses=_WRITE,
)
async def add_membership(
    firm_id: IdPath, body: lists.MembershipIn, principal: Bureau, pool: PoolDep
) -> lists.Membership:
    async with pool.acquire() as conn:
        return await lists.add_membership(
            conn, principal=principal, firm_id=firm_id, membership=body
        )


@router.patch(
    "/{firm_id}/lists/{list_name}/{since}",
    summary="End a list membership (set its until)",
    description="The membership is the firm's on `list_name` that began on `since`; from "
    "`until` on, the weekly rules no longer count it. Audited.",
    responses=_WRITE,
)
async def end_membership(
    firm_id: IdPath,
    list_name: Annotated[lists.ListName, Path(description="the list")],
    since: Annotated[date, Path(description="the day the membership began")],
    body: lists.MembershipEnd,
    principal: Bureau,
    pool: PoolDep,
) -> lists.Membership:
    async with pool.acquire() as conn:
        return await lists.end_membership(
            conn, principal=principal, firm_id=firm_id, list_name=list_name, since=since, end=body
        )


@router.get("/{firm_id}/projects", summary="A firm's projects", responses=_READ)
async def list_projects(
    firm_id: IdPath, principal: Reader, pool: PoolDep
) -> list[projects.Project]:
    """Each project with its commissioning year, design energy use (tce a year) and source."""
    await readable_firm(pool, principal=principal, firm_id=firm_id)
    return await projects.list_projects(pool, firm_id)


@router.post(
    "/{firm_id}/projects",
    status_code=201,
    summary="Record a firm's project",
    description="Commissioning year and design energy use (the two-high rule); 409 if the "
    "firm has a project of that name. Audited.",
    responses=_WRITE,
)
async def add_project(
    firm_id: IdPath, body: projects.ProjectIn, principal: Bureau, pool: PoolDep
) -> projects.Project:
    async with pool.acquire() as conn:
        return await projects.add_project(conn, principal=principal, firm_id=firm_id, project=body)


add_import(
    router,
    "/lists/import",
    kind="lists",
    summary="Import list memberships by credit code",
    example="统一社会信用代码,名单,列入日期,移出日期,来源\n91330782MA0000005K,d_class,2026-01-01,,"
    "2025年度亩均评价 (example)\n",
)
add_import(
    router,
    "/projects/import",
    kind="projects",
    summary="Import projects by credit code",
    example="统一社会信用代码,项目名称,投产年份,设计能耗,来源\n91330782MA0000005K,二期扩建,2019,1200,"
    "节能审查意见 (example)\n",
)

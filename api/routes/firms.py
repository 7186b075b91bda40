"""The registry: firms, their monthly output figures, and bulk imports."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, Protocol

import asyncpg
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel

from api.deps import Bureau, PoolDep, Reader, RegistryReader
from api.params import IdPath, OffsetQuery
from api.problems import Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from meterhub.db import Conn
from registry import firms as service
from registry import imports
from registry.keys import Principal
from registry.output import list_output_figures
from registry.scope import town_filter
from registry.sheets import FIRM_COLUMNS, OUTPUT_COLUMNS, Sheet, read_sheet
from registry.towns import optional_town

router = APIRouter(prefix="/v1/firms", tags=["registry"])
_READ = responses(Unauthorized, Forbidden)
_SHEET_TYPES = "text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class FirmPage(BaseModel):
    total: int
    items: list[service.Firm]


class ImportResult(BaseModel):
    written: bool
    created: int
    updated: int
    errors: list[dict[str, Any]]


class Importer(Protocol):
    """`imports.import_firms` or `imports.import_output_figures`."""

    def __call__(
        self, conn: Conn, *, principal: Principal, sheet: Sheet, partial: bool
    ) -> Awaitable[imports.ImportReport]: ...


@router.get("", summary="List and search firms", responses=_READ)
async def list_firms(
    principal: RegistryReader,
    pool: PoolDep,
    town: Annotated[
        str | None, Query(description="镇街 (苏溪 or 苏溪镇); a town key sees only its own")
    ] = None,
    industry: Annotated[str | None, Query(description="GB/T 4754 code prefix, e.g. C17")] = None,
    q: Annotated[str | None, Query(description="part of the name, or a whole credit code")] = None,
    tag: Annotated[str | None, Query(description="e.g. D-class")] = None,
    sort: Annotated[str, Query(pattern=r"^-?(id|name|town|industry|land_mu)$")] = "id",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> FirmPage:
    total, items = await service.list_firms(
        pool,
        town=town_filter(principal, await optional_town(pool, town)),
        industry=industry,
        q=q,
        tag=tag,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return FirmPage(total=total, items=items)


@router.get(
    "/{firm_id}", summary="One firm", responses=responses(Unauthorized, Forbidden, NotFound)
)
async def get_firm(firm_id: IdPath, principal: RegistryReader, pool: PoolDep) -> service.Firm:
    return await service.readable_firm(pool, principal=principal, firm_id=firm_id)


@router.post(
    "",
    status_code=201,
    summary="Register a firm",
    responses=responses(Unauthorized, Forbidden, InvalidRequest),
)
async def create_firm(body: service.FirmIn, principal: Bureau, pool: PoolDep) -> service.Firm:
    async with pool.acquire() as conn:
        return await service.create_firm(conn, principal=principal, firm=body)


@router.patch(
    "/{firm_id}",
    summary="Change a firm's registration",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def update_firm(
    firm_id: IdPath, body: service.FirmPatch, principal: Bureau, pool: PoolDep
) -> service.Firm:
    async with pool.acquire() as conn:
        return await service.update_firm(conn, principal=principal, firm_id=firm_id, patch=body)


async def _sheet(request: Request, content_type: str | None, columns: Mapping[str, str]) -> Sheet:
    media_type = (content_type or "text/csv").split(";")[0].strip().lower()
    fields = set(columns.values())
    return read_sheet(await request.body(), media_type, aliases=columns, fields=fields)


async def _import(
    run: Importer,
    columns: Mapping[str, str],
    request: Request,
    content_type: str | None,
    principal: Principal,
    pool: asyncpg.Pool,
    partial: bool,
) -> ImportResult:
    """Read the body as a sheet with ``columns`` and import it with ``run``."""
    sheet = await _sheet(request, content_type, columns)
    async with pool.acquire() as conn:
        report = await run(conn, principal=principal, sheet=sheet, partial=partial)
    return ImportResult(
        written=report.written, created=report.created, updated=report.updated, errors=report.errors
    )


@router.post(
    "/import",
    summary="Bulk import firms from the bureau's sheet",
    description=f"Body: the sheet ({_SHEET_TYPES}). Columns: credit_code (统一社会信用代码), "
    "name (企业名称), industry (行业代码), town (镇街: 苏溪 or 苏溪镇, see GET /v1/towns), "
    "land_mu (用地面积(亩)), above_scale (规上企业: 是/否), tags (标签, separated by ; or ,). "
    "Existing firms (same credit code) are updated. All-or-nothing unless `partial=true`; "
    "every bad row is reported by row number.",
    responses=responses(Unauthorized, Forbidden, InvalidRequest),
)
async def import_firms(
    request: Request,
    principal: Bureau,
    pool: PoolDep,
    partial: bool = False,
    content_type: Annotated[str | None, Header()] = None,
) -> ImportResult:
    return await _import(
        imports.import_firms, FIRM_COLUMNS, request, content_type, principal, pool, partial
    )


@router.post(
    "/output-figures/import",
    summary="Bulk import monthly output figures",
    description=f"Body: the sheet ({_SHEET_TYPES}). Columns: credit_code (统一社会信用代码), "
    "month (月份: 2026-03 or 2026年3月), output_value (工业总产值), value_added (工业增加值), "
    "tax_paid (税收), employees (从业人员), rnd_spend (研发费用), main_revenue (主营业务收入); "
    "amounts in yuan. A firm's month is replaced when imported again.",
    responses=responses(Unauthorized, Forbidden, InvalidRequest),
)
async def import_output_figures(
    request: Request,
    principal: Bureau,
    pool: PoolDep,
    partial: bool = False,
    content_type: Annotated[str | None, Header()] = None,
) -> ImportResult:
    return await _import(
        imports.import_output_figures,
        OUTPUT_COLUMNS,
        request,
        content_type,
        principal,
        pool,
        partial,
    )


@router.get(
    "/{firm_id}/output-figures",
    summary="A firm's monthly output figures",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def output_figures(firm_id: IdPath, principal: Reader, pool: PoolDep) -> list[dict[str, Any]]:
    await service.readable_firm(pool, principal=principal, firm_id=firm_id)
    return await list_output_figures(pool, firm_id)

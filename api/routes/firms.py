"""The registry: firms, their monthly output figures, and bulk imports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Bureau, PoolDep, Reader, RegistryReader
from api.params import IdPath, OffsetQuery
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.routes.sheets import PARTIAL_DOC, SHEET_TYPES, add_sheet_import
from registry import firms as service
from registry import imports
from registry.output import list_output_figures
from registry.scope import town_filter
from registry.sheets import FIRM_COLUMNS, OUTPUT_COLUMNS
from registry.towns import optional_town

router = APIRouter(prefix="/v1/firms", tags=["registry"])
_READ = responses(Unauthorized, Forbidden)


class FirmPage(BaseModel):
    total: int
    items: list[service.Firm]


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
    description="409 if a firm with that credit code exists.",
    responses=responses(Unauthorized, Forbidden, Conflict, InvalidRequest),
)
async def create_firm(body: service.FirmIn, principal: Bureau, pool: PoolDep) -> service.Firm:
    async with pool.acquire() as conn:
        return await service.create_firm(conn, principal=principal, firm=body)


@router.patch(
    "/{firm_id}",
    summary="Change a firm's registration",
    responses=responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidRequest),
)
async def update_firm(
    firm_id: IdPath, body: service.FirmPatch, principal: Bureau, pool: PoolDep
) -> service.Firm:
    async with pool.acquire() as conn:
        return await service.update_firm(conn, principal=principal, firm_id=firm_id, patch=body)


_FIRMS_EXAMPLE = (
    "统一社会信用代码,企业名称,行业代码,镇街,用地面积(亩),规上企业,标签\n"
    "91330782MA0000005K,义乌市示例针织有限公司,C1762,苏溪,12.5,是,D-class\n"
)
_OUTPUT_EXAMPLE = (
    "统一社会信用代码,月份,工业总产值,工业增加值,税收\n"
    "91330782MA0000005K,2026-03,1200000,300000,45000\n"
)


add_sheet_import(
    router,
    "/import",
    run=imports.import_firms,
    columns=FIRM_COLUMNS,
    name="import_firms",
    summary="Bulk import firms from the bureau's sheet",
    description=f"Body: the sheet ({SHEET_TYPES}). Columns: credit_code (统一社会信用代码), "
    "name (企业名称), industry (行业代码), town (镇街: 苏溪 or 苏溪镇, see GET /v1/towns), "
    "land_mu (用地面积(亩)), above_scale (规上企业: 是/否), tags (标签, separated by ; or ,). "
    f"Existing firms (same credit code) are updated. {PARTIAL_DOC}",
    example=_FIRMS_EXAMPLE,
)
add_sheet_import(
    router,
    "/output-figures/import",
    run=imports.import_output_figures,
    columns=OUTPUT_COLUMNS,
    name="import_output_figures",
    summary="Bulk import monthly output figures",
    description=f"Body: the sheet ({SHEET_TYPES}). Columns: credit_code (统一社会信用代码), "
    "month (月份: 2026-03 or 2026年3月), output_value (工业总产值), value_added (工业增加值), "
    "tax_paid (税收), employees (从业人员), rnd_spend (研发费用), main_revenue (主营业务收入); "
    f"amounts in yuan. A firm's month is replaced when imported again. {PARTIAL_DOC}",
    example=_OUTPUT_EXAMPLE,
)


@router.get(
    "/{firm_id}/output-figures",
    summary="A firm's monthly output figures",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def output_figures(firm_id: IdPath, principal: Reader, pool: PoolDep) -> list[dict[str, Any]]:
    await service.readable_firm(pool, principal=principal, firm_id=firm_id)
    return await list_output_figures(pool, firm_id)

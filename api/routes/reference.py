"""Reference data the rules and evaluations read: the holiday calendar, grid emission
factors, industry benchmarks and per-mu evaluation schemes. Any person's key may read them
(they hold no firm's data); bureau and admin keys edit and import them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from api.deps import Bureau, People, PoolDep
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.routes.sheets import add_import
from registry.fields import Text
from registry.reference import schemes, tables
from registry.reference.tables import Benchmark, FactorKind, GridFactor, Holiday, HolidayKind

router = APIRouter(prefix="/v1/reference", tags=["reference"])
_READ = responses(Unauthorized, Forbidden)
_DELETE = responses(Unauthorized, Forbidden, NotFound)
Year = Annotated[int | None, Query(ge=2000, le=2100, description="only this year")]
Region = Annotated[Text, Path(description="e.g. zhejiang, east_china, national")]
KeyYear = Annotated[int, Path(ge=2000, le=2100, description="the row's year")]
Industry = Annotated[Text, Path(description="the benchmark's GB/T 4754 code, e.g. C17")]
Indicator = Annotated[Text, Path(description="the benchmark's indicator")]
SchemeId = Annotated[str, Path(pattern=r"^[a-z0-9-]+$", description="e.g. huangyan-2022")]


def _written(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    created = {201: {"description": "Created (200: changed)", "model": model}}
    return responses(Unauthorized, Forbidden, InvalidRequest) | created


def _status(response: Response, created: bool) -> None:
    response.status_code = 201 if created else 200


@router.get("/holidays", summary="The holiday calendar", responses=_READ)
async def list_holidays(
    principal: People,
    pool: PoolDep,
    year: Year = None,
    kind: Annotated[HolidayKind | None, Query(description="only days of this kind")] = None,
) -> list[Holiday]:
    """Statutory holidays, adjusted working days (调休上班) and customary shutdowns
    (春节停工期) the weekly rules judge days by."""
    return await tables.list_rows(pool, tables.HOLIDAYS, year=year, kind=kind)


@router.post(
    "/holidays",
    responses=_written(Holiday),
    summary="Add or change a day of the holiday calendar",
    description="Answers 201 if the day was new, 200 if it was changed. Audited.",
)
async def upsert_holiday(
    body: Holiday, principal: Bureau, pool: PoolDep, response: Response
) -> Holiday:
    async with pool.acquire() as conn:
        created = await tables.upsert_row(
            conn, principal=principal, table=tables.HOLIDAYS, row=body
        )
    _status(response, created)
    return body


@router.delete(
    "/holidays/{day}",
    summary="Remove a day from the calendar",
    description="The day becomes an ordinary working or weekend day again. Audited; answers "
    "with the removed day.",
    responses=_DELETE,
)
async def delete_holiday(
    day: Annotated[date, Path(description="the day, e.g. 2027-02-06")],
    principal: Bureau,
    pool: PoolDep,
) -> Holiday:
    async with pool.acquire() as conn:
        return await tables.delete_row(conn, principal=principal, table=tables.HOLIDAYS, key=(day,))


@router.get("/grid-factors", summary="Grid CO2 emission factors", responses=_READ)
async def list_grid_factors(
    principal: People,
    pool: PoolDep,
    year: Year = None,
    region: Annotated[str | None, Query(description="e.g. zhejiang")] = None,
    kind: Annotated[FactorKind | None, Query(description="only factors of this kind")] = None,
) -> list[GridFactor]:
    """Per year, region and kind (average, excluding traded non-fossil, fossil), in tCO2/MWh."""
    return await tables.list_rows(pool, tables.GRID_FACTORS, year=year, region=region, kind=kind)


@router.post(
    "/grid-factors",
    responses=_written(GridFactor),
    summary="Add or change a grid emission factor",
    description="By year, region and kind; 201 if new, 200 if changed. Audited.",
)
async def upsert_grid_factor(
    body: GridFactor, principal: Bureau, pool: PoolDep, response: Response
) -> GridFactor:
    async with pool.acquire() as conn:
        table = tables.GRID_FACTORS
        _status(response, await tables.upsert_row(conn, principal=principal, table=table, row=body))
    return body


@router.delete(
    "/grid-factors/{year}/{region}/{kind}",
    summary="Remove a grid emission factor",
    description="Audited; answers with the removed factor.",
    responses=_DELETE,
)
async def delete_grid_factor(
    year: KeyYear,
    region: Region,
    kind: Annotated[FactorKind, Path(description="average, excl_traded_nonfossil or fossil")],
    principal: Bureau,
    pool: PoolDep,
) -> GridFactor:
    async with pool.acquire() as conn:
        return await tables.delete_row(
            conn, principal=principal, table=tables.GRID_FACTORS, key=(year, region, kind)
        )


@router.get("/benchmarks", summary="Industry benchmarks", responses=_READ)
async def list_benchmarks(
    principal: People,
    pool: PoolDep,
    industry: Annotated[str | None, Query(description="GB/T 4754 code prefix, e.g. C17")] = None,
    year: Year = None,
    indicator: Annotated[str | None, Query(description="e.g. kwh_per_10k_output")] = None,
) -> list[Benchmark]:
    """Benchmarks per industry (GB/T 4754 code or prefix), year and indicator, each with
    its value, unit and source."""
    return await tables.list_rows(
        pool, tables.BENCHMARKS, industry=industry, year=year, indicator=indicator
    )


@router.post(
    "/benchmarks",
    responses=_written(Benchmark),
    summary="Add or change an industry benchmark",
    description="By industry, year and indicator; 201 if new, 200 if changed. Audited.",
)
async def upsert_benchmark(
    body: Benchmark, principal: Bureau, pool: PoolDep, response: Response
) -> Benchmark:
    async with pool.acquire() as conn:
        table = tables.BENCHMARKS
        _status(response, await tables.upsert_row(conn, principal=principal, table=table, row=body))
    return body


@router.delete(
    "/benchmarks/{industry}/{year}/{indicator}",
    summary="Remove an industry benchmark",
    description="Audited; answers with the removed benchmark.",
    responses=_DELETE,
)
async def delete_benchmark(
    industry: Industry, year: KeyYear, indicator: Indicator, principal: Bureau, pool: PoolDep
) -> Benchmark:
    async with pool.acquire() as conn:
        return await tables.delete_row(
            conn, principal=principal, table=tables.BENCHMARKS, key=(industry, year, indicator)
        )


@router.get("/schemes", summary="Per-mu evaluation schemes", responses=_READ)
async def list_schemes(principal: People, pool: PoolDep, year: Year = None) -> list[schemes.Scheme]:
    """Each scheme with its method, class cuts and indicators per cohort."""
    return await schemes.list_schemes(pool, year=year)


@router.get(
    "/schemes/{scheme_id}",
    summary="One evaluation scheme",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def get_scheme(scheme_id: SchemeId, principal: People, pool: PoolDep) -> schemes.Scheme:
    """The scheme with its method, class cuts and indicators per cohort."""
    return await schemes.get_scheme(pool, scheme_id)


@router.post(
    "/schemes",
    responses=_written(schemes.Scheme),
    summary="Add or replace an evaluation scheme",
    description="The scheme is written whole: its indicators are replaced with the ones "
    "given. 201 if new, 200 if replaced. Audited.",
)
async def upsert_scheme(
    body: schemes.Scheme, principal: Bureau, pool: PoolDep, response: Response
) -> schemes.Scheme:
    async with pool.acquire() as conn:
        _status(response, await schemes.upsert_scheme(conn, principal=principal, scheme=body))
    return body


@router.delete(
    "/schemes/{scheme_id}",
    status_code=204,
    summary="Remove an evaluation scheme and its indicators",
    description="Refused (409) while evaluations computed with it exist.",
    responses=responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def delete_scheme(scheme_id: SchemeId, principal: Bureau, pool: PoolDep) -> None:
    async with pool.acquire() as conn:
        await schemes.delete_scheme(conn, principal=principal, scheme_id=scheme_id)


add_import(
    router,
    "/holidays/import",
    kind="holidays",
    summary="Import holiday-calendar days",
    example="日期,类型,名称,来源\n2027-02-06,holiday,春节,国办发明电 (transcribed: verify)\n",
)
add_import(
    router,
    "/grid-factors/import",
    kind="grid-factors",
    summary="Import grid emission factors",
    example="年份,区域,类型,排放因子,单位,来源\n2023,zhejiang,average,0.5153,tCO2/MWh,"
    "provincial notice (unconfirmed)\n",
)
add_import(
    router,
    "/benchmarks/import",
    kind="benchmarks",
    summary="Import industry benchmarks",
    example="行业代码,年份,指标,值,单位,来源\nC17,2025,kwh_per_10k_output,420,kWh/万元,example\n",
)
add_import(
    router,
    "/schemes/import",
    kind="schemes",
    summary="Import evaluation schemes (one row per indicator)",
    example="方案,方案名称,年份,分档,来源,企业类别,指标,权重,基准值,单位\n"
    "yiwu-2026,义乌2026 (example),2026,A=0.2;B=0.6;C=0.95,example,above_scale,tax_per_mu,"
    "100,25,万元/亩\n",
)

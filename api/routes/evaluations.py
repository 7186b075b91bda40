"""Per-mu evaluations (亩均效益综合评价) and carbon-efficiency grades (碳效码) by year:
listings as JSON, CSV (UTF-8 BOM) or XLSX, a run of a year, the import of official
classes, and one firm's history. A town key sees only its own town's firms."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alerts import ratings
from alerts.annual import Period
from alerts.evaluation import COHORTS, NOT_RATED
from alerts.official import OFFICIAL_COLUMNS, import_official
from alerts.yearly import run_year
from api.deps import Bureau, PoolDep, Reader
from api.formats import FormatDep, Table, render, table_responses
from api.params import IdPath
from api.problems import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.routes.sheets import PARTIAL_DOC, add_sheet_import
from api.trends.params import Lang, LangQuery
from meterhub.settings import Settings
from registry.fields import Text
from registry.firms import readable_firm
from registry.scope import town_filter
from registry.towns import optional_town

router = APIRouter(tags=["analytics"])

Cohort = Literal["above_scale", "below_scale_3mu", "below_scale_small", "not_rated"]
Class = Literal["A", "B", "C", "D"]
Source = Literal["computed", "official"]
Level = Literal["low", "medium", "high"]
YearQuery = Annotated[
    int, Query(ge=2000, le=2100, description="the evaluated year", examples=[2025])
]
TownQuery = Annotated[
    str | None, Query(max_length=50, description="镇街 (苏溪 or 苏溪镇); a town key: its own only")
]
IndustryQuery = Annotated[
    str | None, Query(pattern="^[A-T][0-9]{0,4}$", description="GB/T 4754 code prefix, e.g. C29")
]
_ERRORS = responses(Unauthorized, Forbidden, InvalidRequest)
assert set(COHORTS) | {NOT_RATED} == set(get_args(Cohort))  # one list of cohorts


_FIRM = {"firm_id": 42, "firm": "义乌市某某针织有限公司", "credit_code": "91330782MA2A0B1C2D"}
_FIRM |= {"town": "苏溪", "industry": "C1762", "year": 2025, "through_month": 12}
EVALUATION_EXAMPLE: dict[str, Any] = {
    "year": 2025,
    "town": "苏溪",
    "items": [
        _FIRM
        | {
            "source": "computed",
            "scheme_id": "huangyan-2022",
            "cohort": "above_scale",
            "score": 100.92,
            "class": "A",
            "rank": 3,
            "cohort_size": 120,
            "tax_per_mu": 18.07,
            "va_per_mu": 204.24,
            "va_per_tce": 2.10,
            "va_per_t_emissions": 8169.6,
            "va_per_employee": 20.42,
            "rnd_share": 0.0151,
            "tax_per_kwh": 0.60,
            "not_rated_reason": None,
        }
    ],
}
CARBON_EXAMPLE: dict[str, Any] = {
    "year": 2025,
    "town": "苏溪",
    "items": [
        _FIRM
        | {
            "sector": "C17",
            "co2_t": 623.4,
            "value_added_10k": 500.0,
            "l": 1.2468,
            "sector_l": 0.6616,
            "k": 1.8845,
            "grade": 4,
            "level": "medium",
            "factor": 0.5153,
            "factor_year": 2022,
            "factor_region": "zhejiang",
            "factor_kind": "average",
            "gas_kg_co2_per_m3": 2.162,
        }
    ],
}


class EvaluationsOut(BaseModel):
    year: int
    town: str | None
    items: list[dict[str, Any]]


class CarbonOut(BaseModel):
    year: int
    town: str | None
    items: list[dict[str, Any]]


async def _filters(
    principal: Reader, pool: PoolDep, year: int, town: str | None, industry: str | None
) -> ratings.Filters:
    scoped = town_filter(principal, await optional_town(pool, town))
    return ratings.Filters(year=year, town=scoped, industry=industry)


@router.get(
    "/v1/evaluations",
    summary="Per-mu evaluations of a year: cohort, score, rank, class, indicator values",
    responses={
        **table_responses(
            model=EvaluationsOut, example=EVALUATION_EXAMPLE, description="Evaluations"
        ),
        **_ERRORS,
    },
)
async def list_evaluations(
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    year: YearQuery,
    cohort: Cohort | None = None,
    cls: Annotated[Class | None, Query(alias="class")] = None,
    source: Annotated[
        Source | None, Query(description="computed or official; both if unset")
    ] = None,
    town: TownQuery = None,
    industry: IndustryQuery = None,
    lang: LangQuery = Lang.EN,
) -> Response:
    filters = await _filters(principal, pool, year, town, industry)
    async with pool.acquire() as conn:
        frame = await ratings.evaluations(
            conn, filters=filters, cohort=cohort, cls=cls, source=source
        )
    table = Table(frame, filename=f"evaluations-{year}", labels=ratings.LABELS)
    meta = {"year": year, "town": filters.town}
    return render(table, fmt, meta=meta, chinese=lang is Lang.ZH)


@router.get(
    "/v1/carbon-grades",
    summary="Carbon-efficiency grades (碳效码) of a year: CO2, L, sector L, K, grade, level",
    responses={
        **table_responses(model=CarbonOut, example=CARBON_EXAMPLE, description="Grades"),
        **_ERRORS,
    },
)
async def list_carbon_grades(
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    year: YearQuery,
    grade: Annotated[int | None, Query(ge=1, le=5)] = None,
    level: Level | None = None,
    town: TownQuery = None,
    industry: IndustryQuery = None,
    lang: LangQuery = Lang.EN,
) -> Response:
    filters = await _filters(principal, pool, year, town, industry)
    async with pool.acquire() as conn:
        frame = await ratings.carbon_grades(conn, filters=filters, grade=grade, level=level)
    table = Table(frame, filename=f"carbon-grades-{year}", labels=ratings.LABELS)
    return render(table, fmt, meta={"year": year, "town": filters.town}, chinese=lang is Lang.ZH)


class RunIn(BaseModel):
    year: int = Field(ge=2000, le=2100, examples=[2025])
    scheme: Text | None = Field(default=None, description="default: newest not after the year")
    through_month: int = Field(default=12, ge=1, le=12, description="year to date: Jan..M")


class RunOut(BaseModel):
    year: int
    through_month: int
    scheme: str
    firms: int
    classes: dict[str, dict[str, int]]
    not_rated: dict[str, int]
    grades: dict[int, int]
    factor: dict[str, Any]
    seconds: dict[str, float]


@router.post(
    "/v1/evaluations/run",
    summary="Compute a year's (or year to date's) evaluations and carbon grades",
    description="Replaces the year's computed evaluations and its carbon grades; official "
    "classes stay. Idempotent.",
    responses=responses(Unauthorized, Forbidden, InvalidRequest, Conflict),
)
async def run_evaluations(
    request: Request, body: RunIn, principal: Bureau, pool: PoolDep
) -> RunOut:
    settings: Settings = request.app.state.settings
    period = Period(body.year, body.through_month)
    summary = await run_year(pool, period=period, settings=settings, scheme_id=body.scheme)
    return RunOut(
        year=period.year,
        through_month=period.through_month,
        scheme=summary.scheme,
        firms=summary.firms,
        classes=summary.classes,
        not_rated=summary.not_rated,
        grades=summary.grades,
        factor=asdict(summary.factor),
        seconds=summary.seconds,
    )


_OFFICIAL_EXAMPLE = "统一社会信用代码,年度,评价类别,综合得分\n91330782MA0000005K,2025,B,78.5\n"


add_sheet_import(
    router,
    "/v1/evaluations/official/import",
    run=import_official,
    columns=OFFICIAL_COLUMNS,
    name="import_official_classes",
    summary="Import officially published classes (CSV or XLSX)",
    description="Columns: credit_code (统一社会信用代码), year (年度), class (评价类别: A-D), "
    "score (综合得分, optional). Stored beside the computed classes (source official). "
    f"{PARTIAL_DOC}",
    example=_OFFICIAL_EXAMPLE,
)


class HistoryOut(BaseModel):
    firm_id: int
    evaluations: list[dict[str, Any]]
    carbon_grades: list[dict[str, Any]]


@router.get(
    "/v1/firms/{firm_id}/evaluations",
    summary="A firm's per-mu classes by year (computed and official) and carbon grades",
    responses=responses(Unauthorized, Forbidden, NotFound),
)
async def firm_evaluations(firm_id: IdPath, principal: Reader, pool: PoolDep) -> HistoryOut:
    await readable_firm(pool, principal=principal, firm_id=firm_id)
    async with pool.acquire() as conn:
        return HistoryOut(**await ratings.history(conn, firm_id))

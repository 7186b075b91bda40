"""A firm's analytic profile for the bureau and its town."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from alerts.profile import last_whole_week, profile
from alerts.rulebook import Rulebook
from api.deps import PoolDep, Reader
from api.problems import Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.routes.findings import Finding
from meterhub.settings import Settings
from registry.firms import Firm, readable_firm

router = APIRouter(prefix="/v1/firms", tags=["analytics"])


class PeriodEnergy(BaseModel):
    period: Literal["week", "month_to_date", "year_to_date", "rolling_12_months"]
    start: date
    end: date
    electricity_kwh: float | None
    gas_m3: float | None
    water_t: float | None
    tce_calorific: float | None
    tce_equal_value: float | None
    co2_t: float | None
    co2_factor_year: int | None
    output_value: float | None
    value_added: float | None
    output_basis: Literal["reported", "apportioned", "partial", "missing"]
    kwh_per_10k_output: float | None
    tce_per_10k_output: float | None
    kwh_per_10k_value_added: float | None
    kwh_per_mu: float | None


class Intensity(BaseModel):
    sector: str
    months: int
    kwh_per_10k_output: float
    peer_median: float | None
    peers: int
    year_on_year: float | None


class Baseline(BaseModel):
    months: int
    intercept_kwh: float
    kwh_per_10k_output: float
    r2: float
    cv_rmse: float
    nmbe: float
    p_value: float
    valid: bool


class CarbonGrade(BaseModel):
    year: int
    sector: str
    co2_t: float
    value_added_10k: float
    l: float  # noqa: E741 (the standard's own symbol)
    sector_l: float
    k: float
    grade: int
    level: str
    factor: float


class Profile(BaseModel):
    firm: Firm
    week: date
    energy: list[PeriodEnergy]
    intensity: Intensity | None
    baseline: Baseline | None
    evaluations: list[dict[str, Any]]  # year, source, scheme_id, cohort, score, class, rank
    carbon_grade: CarbonGrade | None
    open_findings: list[Finding]
    data_quality_90_days: dict[str, int]


@router.get(
    "/{firm_id}/profile",
    response_model=Profile,
    summary="A firm's analytic profile: energy accounting, intensity against its industry, "
    "baseline fit, evaluations, carbon grade, open findings, data-quality events",
    responses=responses(Unauthorized, Forbidden, NotFound, InvalidRequest),
)
async def firm_profile(
    request: Request,
    firm_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Reader,
    pool: PoolDep,
    week: Annotated[
        date | None, Query(description="the Monday of the week (default: the last whole week)")
    ] = None,
) -> dict[str, Any]:
    monday = week or last_whole_week(date.today())
    if monday.isoweekday() != 1:
        raise InvalidRequest(f"week must be a Monday, not {monday}")
    firm = await readable_firm(pool, principal=principal, firm_id=firm_id)
    settings: Settings = request.app.state.settings
    book: Rulebook = request.app.state.rulebook
    async with pool.acquire() as conn:
        return await profile(
            conn, firm=firm.model_dump(), week=monday, settings=settings, rulebook=book
        )

"""Trend queries for the bureau and the towns: series, rankings, intensity, production state.

Bureau and admin keys read everything. A town key reads only its own town: another town's
firm, meter or aggregate is 403; the city and industry aggregates (and the lists) are
narrowed to its own town, which the answer names in ``town``. Every endpoint answers JSON,
or CSV/XLSX with ``?format=`` or an ``Accept`` header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from alerts import calendar
from alerts.calendar import Granularity
from alerts.energy import Basis, Factors
from alerts.trends import intensity, production, ranking, series
from alerts.trends.intensity import IntensitySort
from alerts.trends.paging import Order, Page
from alerts.trends.ranking import RankBy
from alerts.trends.scope import Scope, Target, check_industry, resolve
from api.deps import PoolDep, Reader
from api.formats import Format, FormatDep, Table, render, table_responses
from api.problems import Forbidden, InvalidRequest, NotFound, Unauthorized, responses
from api.trends import schemas
from api.trends.params import (
    BasisQuery,
    BreakdownQuery,
    CompareQuery,
    EndQuery,
    FirstDayQuery,
    GranularityQuery,
    IdQuery,
    IndustryQuery,
    IntensitySortQuery,
    Lang,
    LangQuery,
    LastDayQuery,
    LimitQuery,
    MinPreviousQuery,
    MonthQuery,
    MonthsQuery,
    OffsetQuery,
    OrderQuery,
    RankByQuery,
    ScopeQuery,
    SeriesUtilityQuery,
    StartQuery,
    StateQuery,
    TopLimitQuery,
    TownQuery,
    UtilityQuery,
    WeekQuery,
)
from meterhub.reading import LOCAL_TZ, UTILITY_UNIT, Utility
from meterhub.settings import Settings
from registry.scope import town_filter

router = APIRouter(prefix="/v1/trends", tags=["trends"])


def _responses(model: type[Any], example: dict[str, Any], what: str) -> dict[int | str, Any]:
    errors = responses(InvalidRequest, Unauthorized, Forbidden, NotFound)
    return {**table_responses(model=model, example=example, description=what), **errors}


def _iso(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).isoformat()


def _firms(principal: Reader, town: str | None, industry: str | None) -> Target:
    return Target(town=town_filter(principal, town), industry=check_industry(industry))


def _parsed(parse: Callable[[str], datetime], text: str) -> datetime:
    """``parse(text)``, a malformed ``text`` being 422."""
    try:
        return parse(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _page(
    page: Page,
    fmt: Format,
    *,
    meta: Mapping[str, Any],
    filename: str,
    labels: Mapping[str, str],
    lang: Lang,
) -> Response:
    """One page of a per-firm list, its paging in the JSON envelope and ``X-Total-Count``."""
    table = Table(page.frame, filename=filename, labels=labels)
    headers = {"X-Total-Count": str(page.total)}
    meta = {**meta, **page.meta()}
    return render(table, fmt, meta=meta, chinese=lang is Lang.ZH, headers=headers)


@router.get(
    "/series",
    summary="Consumption series of a meter, firm, industry, town or the city",
    description=series.__doc__,
    responses=_responses(schemas.SeriesOut, schemas.SERIES_EXAMPLE, "The series"),
)
async def get_series(
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    scope: ScopeQuery,
    start: StartQuery,
    end: EndQuery,
    id: IdQuery = None,
    utility: SeriesUtilityQuery = None,
    granularity: GranularityQuery = Granularity.DAY,
    compare: CompareQuery = None,
    breakdown: BreakdownQuery = None,
    lang: LangQuery = Lang.EN,
) -> Response:
    target = await resolve(pool, principal, scope=scope, id=id)
    if breakdown is not None and scope in (Scope.METER, Scope.FIRM):
        raise InvalidRequest("breakdown applies to industry, town and city scopes")
    kind = target.meter_utility or utility or Utility.ELECTRICITY
    if utility is not None and utility != kind:
        raise InvalidRequest(f"meter {id} measures {kind}, not {utility}")
    result = await series.series(
        pool,
        target,
        utility=kind,
        granularity=granularity,
        start=calendar.local(start),
        end=calendar.local(end),
        compare=compare,
        breakdown=breakdown,
    )
    meta = {
        "scope": scope,
        "id": id,
        "town": target.town,
        "utility": kind,
        "unit": UTILITY_UNIT[kind],
        "granularity": granularity,
        "timezone": str(LOCAL_TZ),
        "start": _iso(result.start),
        "end": _iso(result.end),
        "compare": compare,
        "breakdown": breakdown,
        "total": result.total,
    }
    name = f"trend-{scope}{f'-{id}' if id else ''}-{granularity}-{result.start:%Y%m%d}"
    table = Table(result.frame, filename=name, labels=series.LABELS)
    return render(table, fmt, meta=meta, key="buckets", chinese=lang is Lang.ZH)


@router.get(
    "/top",
    summary="Top consumers or fastest growers",
    description=ranking.__doc__,
    responses=_responses(schemas.TopOut, schemas.TOP_EXAMPLE, "Ranks"),
)
async def get_top(
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    start: FirstDayQuery,
    end: LastDayQuery,
    by: RankByQuery = RankBy.CONSUMPTION,
    town: TownQuery = None,
    industry: IndustryQuery = None,
    utility: UtilityQuery = Utility.ELECTRICITY,
    min_previous: MinPreviousQuery = 0.0,
    order: OrderQuery = Order.DESC,
    limit: TopLimitQuery = 20,
    offset: OffsetQuery = 0,
    lang: LangQuery = Lang.EN,
) -> Response:
    target = _firms(principal, town, industry)
    page = await ranking.top(
        pool,
        target,
        utility=utility,
        start=start,
        end=end,
        by=by,
        order=order,
        limit=limit,
        offset=offset,
        min_previous=min_previous,
    )
    previous_start = ranking.periods(start, end)[0]
    meta = {
        "by": by,
        "order": order,
        "utility": utility,
        "unit": UTILITY_UNIT[utility],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "previous_start": previous_start.date().isoformat(),
        "town": target.town,
        "industry": target.industry,
    }
    name = f"top-{by}-{start:%Y%m%d}"
    return _page(page, fmt, meta=meta, filename=name, labels=ranking.LABELS, lang=lang)


@router.get(
    "/intensity",
    summary="Energy intensity per firm (per 10k yuan of output, of value added, per mu)",
    description=intensity.__doc__,
    responses=_responses(schemas.IntensityOut, schemas.INTENSITY_EXAMPLE, "Firms"),
)
async def get_intensity(
    request: Request,
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    month: MonthQuery,
    months: MonthsQuery = 1,
    town: TownQuery = None,
    industry: IndustryQuery = None,
    basis: BasisQuery = Basis.CALORIFIC,
    sort: IntensitySortQuery = IntensitySort.KWH_PER_10K_OUTPUT,
    order: OrderQuery = Order.DESC,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
    lang: LangQuery = Lang.EN,
) -> Response:
    first = _parsed(calendar.parse_month, month)
    target = _firms(principal, town, industry)
    settings: Settings = request.app.state.settings
    factors = Factors.of(settings, basis)
    page = await intensity.intensity(
        pool,
        target,
        month=first,
        months=months,
        factors=factors,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    meta = {
        "month": month,
        "months": months,
        "basis": basis,
        "kgce_per_unit": asdict(factors),
        "town": target.town,
        "industry": target.industry,
        "sort": sort,
        "order": order,
    }
    name = f"intensity-{first:%Y-%m}"  # from the parsed month, never the raw text
    return _page(page, fmt, meta=meta, filename=name, labels=intensity.LABELS, lang=lang)


@router.get(
    "/production-state",
    summary="Share of firms running, reduced or stopped in a week, from their load",
    description=production.__doc__,
    responses=_responses(schemas.ProductionOut, schemas.PRODUCTION_EXAMPLE, "States"),
)
async def get_production_state(
    request: Request,
    principal: Reader,
    pool: PoolDep,
    fmt: FormatDep,
    week: WeekQuery = None,
    town: TownQuery = None,
    industry: IndustryQuery = None,
    utility: UtilityQuery = Utility.ELECTRICITY,
    state: StateQuery = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
    lang: LangQuery = Lang.EN,
) -> Response:
    now = datetime.now(LOCAL_TZ)
    if week is None:  # the last complete week
        monday = calendar.floor(now, Granularity.WEEK) - production.WEEK
    else:
        monday = _parsed(calendar.parse_week, week)
    target = _firms(principal, town, industry)
    rule = production.Rule.of(request.app.state.settings)
    frame, elapsed = await production.production_state(
        pool, target, week=monday, utility=utility, rule=rule, now=now
    )
    page = production.listing(frame, state=state, limit=limit, offset=offset)
    year, number, _ = monday.isocalendar()
    iso_week = f"{year}-W{number:02d}"
    meta = {
        "week": iso_week,
        "start": _iso(monday),
        "end": _iso(monday + production.WEEK),
        "complete": elapsed >= 1.0,
        "elapsed": round(elapsed, 6),
        "utility": utility,
        "rule": asdict(rule),
        "town": target.town,
        "industry": target.industry,
        **production.summary(frame),
    }
    name = f"production-{iso_week}"
    return _page(page, fmt, meta=meta, filename=name, labels=production.LABELS, lang=lang)

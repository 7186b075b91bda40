"""Query parameters the trend routes share, with their OpenAPI descriptions and examples."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, Field

from alerts.calendar import Compare, Granularity
from alerts.energy import Basis
from alerts.trends.intensity import IntensitySort
from alerts.trends.paging import Order
from alerts.trends.production import State
from alerts.trends.queries import Breakdown
from alerts.trends.ranking import RankBy
from alerts.trends.scope import Scope
from api.params import OffsetQuery
from meterhub.reading import Utility
from registry.fields import FIRST_DAY, LAST_DAY

#: Years a trend query may name (`registry.fields.FIRST_DAY` to `LAST_DAY`).
_YEAR = "(199[0-9]|20[0-9][0-9])"


def _in_range(value: datetime) -> datetime:
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise ValueError(f"must lie between {FIRST_DAY} and {LAST_DAY}")
    return value


#: A day or date-time a trend may start or end at.
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
Moment = Annotated[datetime, AfterValidator(_in_range)]


__all__ = ["OffsetQuery"]  # re-exported beside the trend parameters (api.params has it)


class Lang(enum.StrEnum):
    EN = "en"
    ZH = "zh"


LangQuery = Annotated[
    Lang, Query(description="CSV/XLSX column headers: en (field names) or zh (Chinese)")
]
TownQuery = Annotated[
    str | None,
    Query(description="only this town's firms (a town key: its own town only)", examples=["苏溪"]),
]
IndustryQuery = Annotated[
    str | None,
    Query(description="GB/T 4754 code prefix, e.g. C17 (textiles) or C1711", examples=["C17"]),
]
UtilityQuery = Annotated[Utility, Query(description="electricity (kWh), water or gas (m3)")]
OrderQuery = Annotated[Order, Query(description="desc (largest first) or asc; nulls last")]

ScopeQuery = Annotated[Scope, Query(description="what to sum: meter, firm, industry, town or city")]
StartQuery = Annotated[
    Moment,
    Query(
        description="ISO date or date-time; without an offset it is Asia/Shanghai time; "
        "aligned down to the bucket containing it",
        examples=["2026-03-01"],
    ),
]
EndQuery = Annotated[
    Moment,
    Query(description="exclusive; aligned up to a bucket boundary", examples=["2026-04-01"]),
]
IdQuery = Annotated[
    str | None,
    Query(
        description="meter or firm id, industry code prefix (C17) or town name; none for city",
        examples=["42"],
    ),
]
SeriesUtilityQuery = Annotated[
    Utility | None,
    Query(description="default electricity; for scope=meter the meter's own utility"),
]
GranularityQuery = Annotated[
    Granularity, Query(description="15min, hour, day, week (from Monday 00:00) or month")
]
CompareQuery = Annotated[
    Compare | None,
    Query(
        description="yoy: the same calendar bucket a year earlier (29 February and ISO week 53 "
        "without a counterpart: none); pop: the bucket before"
    ),
]
BreakdownQuery = Annotated[
    Breakdown | None,
    Query(description="one series per town or per GB/T 4754 division (C17, C26...)"),
]
FirstDayQuery = Annotated[
    Day, Query(description="first day (Asia/Shanghai)", examples=["2026-03-01"])
]
LastDayQuery = Annotated[
    Day, Query(description="the day after the last (exclusive)", examples=["2026-04-01"])
]
MonthQuery = Annotated[
    str, Query(pattern=rf"^{_YEAR}-(0[1-9]|1[0-2])$", description="YYYY-MM", examples=["2026-03"])
]
WeekQuery = Annotated[
    str | None,
    Query(
        pattern=rf"^{_YEAR}-W(0[1-9]|[1-4][0-9]|5[0-3])$",
        description="ISO week YYYY-Www; default: the last complete week",
        examples=["2026-W10"],
    ),
]
RankByQuery = Annotated[
    RankBy, Query(description="consumption, or growth against the previous equal period")
]
MinPreviousQuery = Annotated[
    float, Query(ge=0, description="growth: leave out firms whose previous energy is below this")
]
TopLimitQuery = Annotated[int, Query(ge=1, le=1000, description="N: rows per page")]
MonthsQuery = Annotated[int, Query(ge=1, le=12, description="months summed, from `month` on")]
BasisQuery = Annotated[
    Basis, Query(description="electricity to coal: calorific (当量值) or equal_value (等价值)")
]
IntensitySortQuery = Annotated[IntensitySort, Query(description="column to sort by")]
StateQuery = Annotated[State | None, Query(description="list only the firms in this state")]
LimitQuery = Annotated[int, Query(ge=1, le=5000, description="rows per page")]

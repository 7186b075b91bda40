"""Top consumers and fastest growers over a date range, against the previous equal period.

The previous period is as long as the range and ends where it starts: as many calendar
months when both ends are the 1st of a month (March compares with February), otherwise as
many days. Both periods are summed in one scan of `firm_rollups` (month rows for whole
months, else day rows). Consumption ranks every firm with data in the range; growth ranks
only firms whose previous-period energy is positive and at least ``min_previous`` (a tiny
base makes any growth ratio meaningless).
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

import asyncpg
import polars as pl

from alerts import calendar
from alerts.calendar import Granularity
from alerts.errors import InvalidQueryError
from alerts.trends.paging import FIRM_SCHEMA, Order, Page, firm_label_columns, paginate
from alerts.trends.queries import Sql, fetch_frame, firm_conditions
from alerts.trends.scope import Target
from meterhub.reading import LOCAL_TZ, Utility


class RankBy(enum.StrEnum):
    CONSUMPTION = "consumption"
    GROWTH = "growth"


LABELS = {
    **firm_label_columns(),
    "energy": "本期用量",
    "previous_energy": "上期用量",
    "change": "增量",
    "change_ratio": "增长率",
    "estimated_share": "估算占比",
}

_SCHEMA = pl.Schema(
    {
        **FIRM_SCHEMA,
        "energy": pl.Float64(),
        "estimated": pl.Float64(),
        "previous_energy": pl.Float64(),
    }
)


def periods(start: date, end: date) -> tuple[datetime, datetime, datetime, Granularity]:
    """``(previous_start, start, end, grain)`` as Asia/Shanghai midnights."""
    if end <= start:
        raise InvalidQueryError("end must be after start")
    lo = datetime.combine(start, datetime.min.time(), LOCAL_TZ)
    hi = datetime.combine(end, datetime.min.time(), LOCAL_TZ)
    if start.day == 1 and end.day == 1:
        months = calendar.count(lo, hi, Granularity.MONTH)
        return calendar.step(lo, Granularity.MONTH, -months), lo, hi, Granularity.MONTH
    return lo - timedelta(days=(end - start).days), lo, hi, Granularity.DAY


async def top(
    pool: asyncpg.Pool,
    target: Target,
    *,
    utility: Utility,
    start: date,
    end: date,
    by: RankBy,
    order: Order = Order.DESC,
    limit: int = 20,
    offset: int = 0,
    min_previous: float = 0.0,
) -> Page:
    """Firms of ``target`` ranked by consumption in ``[start, end)`` or by growth."""
    previous_start, lo, hi, grain = periods(start, end)
    sql = Sql()
    conditions = [
        f"r.granularity = {sql.arg(str(grain))}",
        f"r.utility = {sql.arg(str(utility))}",
        f"r.bucket >= {sql.arg(previous_start)}",
        f"r.bucket < {sql.arg(hi)}",
        *firm_conditions(target, sql, firm_id="r.firm_id"),
    ]
    split = sql.arg(lo)
    text = (
        "SELECT f.id AS firm_id, f.credit_code, f.name, f.town, f.industry, "
        f"sum(r.energy) FILTER (WHERE r.bucket >= {split}) AS energy, "
        f"sum(r.estimated) FILTER (WHERE r.bucket >= {split}) AS estimated, "
        f"sum(r.energy) FILTER (WHERE r.bucket < {split}) AS previous_energy "
        "FROM firm_rollups r JOIN firms f ON f.id = r.firm_id "
        f"WHERE {' AND '.join(conditions)} GROUP BY f.id"
    )
    frame = await fetch_frame(pool, text, sql, _SCHEMA)
    frame = frame.filter(pl.col("energy").is_not_null()).with_columns(
        change=(pl.col("energy") - pl.col("previous_energy")).round(3),
        change_ratio=pl.when(pl.col("previous_energy") > 0).then(
            ((pl.col("energy") - pl.col("previous_energy")) / pl.col("previous_energy")).round(6)
        ),
        estimated_share=pl.when(pl.col("energy") > 0)
        .then((pl.col("estimated") / pl.col("energy")).round(6))
        .otherwise(0.0),
        energy=pl.col("energy").round(3),
        previous_energy=pl.col("previous_energy").round(3),
    )
    sort = "energy"
    if by is RankBy.GROWTH:
        sort = "change_ratio"
        frame = frame.filter(
            pl.col("change_ratio").is_not_null() & (pl.col("previous_energy") >= min_previous)
        )
    frame = frame.select(
        "firm_id",
        "credit_code",
        "name",
        "town",
        "industry",
        "energy",
        "previous_energy",
        "change",
        "change_ratio",
        "estimated_share",
    )
    return paginate(frame, sort=sort, order=order, limit=limit, offset=offset, rank=True)

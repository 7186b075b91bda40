"""SQL for trend series, built from the target, granularity and breakdown.

Sources, cheapest first: a meter's hours, days and months come from `meter_rollups`; the
days and months of a town or the city (alone or by town) from `town_rollups` (one row per
town and bucket: `ingest.town_rollups`); any other set of firms' from `firm_rollups`;
weeks are summed from day rollups; 15-minute series read `intervals`. Week buckets use
`WEEK_BUCKET`: ``date_bin`` from Monday 2000-01-03 00:00 +08:00 is pure arithmetic (three
times cheaper than a time-zone-aware ``time_bucket``) and exact because Asia/Shanghai keeps
+08:00 all year (no daylight saving since 1991). Only the conditions a query needs are
written out, so every statement gets a plan for its own shape.

Towns are attributed by period: a town filter or breakdown of firms reads `firm_towns` (the
town each firm belonged to over time) at each bucket's start (a week: at each of its days),
so a firm that moves does not take its past weeks along to its new town. Town rollups hold
the same attribution, summed (their buckets start where the firm rollups' do).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import polars as pl

from alerts.calendar import Granularity
from alerts.trends.scope import Target
from meterhub.reading import Utility


class Breakdown(enum.StrEnum):
    TOWN = "town"
    INDUSTRY = "industry"  # GB/T 4754 division: section letter and two digits, e.g. C17


_GROUP = {Breakdown.TOWN: "ft.town", Breakdown.INDUSTRY: "left(f.industry, 3)"}


@dataclass(slots=True)
class Sql:
    """A statement being built: text fragments and positional arguments."""

    args: list[object] = field(default_factory=list)

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


async def fetch_frame(pool: asyncpg.Pool, text: str, sql: Sql, schema: pl.Schema) -> pl.DataFrame:
    """The rows of ``text`` run with ``sql``'s arguments, as a frame of ``schema`` (by position)."""
    rows = await pool.fetch(text, *sql.args)
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def firm_conditions(target: Target, sql: Sql, *, firm_id: str, town: str = "f.town") -> list[str]:
    """WHERE conditions selecting the target's firms (``f`` is the firms alias; ``town`` the
    column naming their town: `town_join`'s for the town at each bucket)."""
    conditions = []
    if target.firm_id is not None:
        conditions.append(f"{firm_id} = {sql.arg(target.firm_id)}")
    if target.town is not None:
        conditions.append(f"{town} = {sql.arg(target.town)}")
    if target.industry is not None:
        conditions.append(f"f.industry LIKE {sql.arg(target.industry)} || '%'")
    return conditions


def _needs_industry(target: Target, breakdown: Breakdown | None) -> bool:
    return breakdown is Breakdown.INDUSTRY or target.industry is not None


def _needs_towns(target: Target, breakdown: Breakdown | None) -> bool:
    return breakdown is Breakdown.TOWN or target.town is not None


def town_join(firm_id: str, at: str) -> str:
    """JOIN of the town (``ft.town``) firm ``firm_id`` belonged to at time ``at``."""
    return (
        f"JOIN firm_towns ft ON ft.firm_id = {firm_id} "
        f"AND {at} >= ft.valid_from AND {at} < ft.valid_to "
    )


def _joins(target: Target, breakdown: Breakdown | None, *, firm_id: str, at: str) -> str:
    firms = f"JOIN firms f ON f.id = {firm_id} " if _needs_industry(target, breakdown) else ""
    towns = town_join(firm_id, at) if _needs_towns(target, breakdown) else ""
    return firms + towns


#: Monday 00:00 Asia/Shanghai of the week containing ``{}``.
WEEK_BUCKET = "date_bin('7 days', {}, timestamptz '2000-01-03 00:00:00+08')"


def _bucket(granularity: Granularity) -> str:
    return WEEK_BUCKET.format("r.bucket") if granularity is Granularity.WEEK else "r.bucket"


def _rollup_grain(granularity: Granularity) -> str:
    return "day" if granularity is Granularity.WEEK else str(granularity)


def _reads_town_rollups(
    target: Target, granularity: Granularity, breakdown: Breakdown | None
) -> bool:
    """A town or the city, alone or by town, by day, week or month."""
    return (
        target.firm_id is None
        and target.industry is None
        and breakdown in (None, Breakdown.TOWN)
        and granularity in (Granularity.DAY, Granularity.WEEK, Granularity.MONTH)
    )


def _town_series(
    target: Target,
    sql: Sql,
    *,
    utility: Utility,
    granularity: Granularity,
    span: tuple[datetime, datetime],
    by_town: bool,
) -> str:
    conditions = [
        f"r.granularity = {sql.arg(_rollup_grain(granularity))}",
        f"r.utility = {sql.arg(str(utility))}",
        f"r.bucket >= {sql.arg(span[0])}",
        f"r.bucket < {sql.arg(span[1])}",
    ]
    if target.town is not None:
        conditions.append(f"r.town = {sql.arg(target.town)}")
    group = "r.town AS grp, " if by_town else ""
    return (
        f"SELECT {group}{_bucket(granularity)} AS bucket, sum(r.energy) AS energy, "
        f"sum(r.estimated) AS estimated FROM town_rollups r "
        f"WHERE {' AND '.join(conditions)} GROUP BY {'1, 2' if by_town else '1'}"
    )


def series_sql(
    target: Target,
    *,
    utility: Utility,
    granularity: Granularity,
    start: datetime,
    end: datetime,
    breakdown: Breakdown | None = None,
) -> tuple[str, list[object]]:
    """A statement returning ``[grp,] bucket, energy, estimated`` per bucket in
    ``[start, end)`` (both aligned to ``granularity``)."""
    sql = Sql()
    group = f"{_GROUP[breakdown]} AS grp, " if breakdown is not None else ""
    # By position: `bucket` alone would mean the rollup column, not the week expression.
    group_by = "1, 2" if breakdown is not None else "1"
    if target.meter_id is not None:
        meter = sql.arg(target.meter_id)
        lo, hi = sql.arg(start), sql.arg(end)
        if granularity is Granularity.MIN15:
            text = (
                "SELECT i.start AS bucket, i.energy, "
                "CASE WHEN i.estimated THEN i.energy ELSE 0 END AS estimated "
                f"FROM intervals i WHERE i.meter_id = {meter} "
                f"AND i.start >= {lo} AND i.start < {hi}"
            )
            return text, sql.args
        grain = sql.arg(_rollup_grain(granularity))
        text = (
            f"SELECT {_bucket(granularity)} AS bucket, sum(r.energy) AS energy, "
            "sum(r.estimated) AS estimated FROM meter_rollups r "
            f"WHERE r.granularity = {grain} AND r.meter_id = {meter} "
            f"AND r.bucket >= {lo} AND r.bucket < {hi} GROUP BY 1"
        )
        return text, sql.args
    if _reads_town_rollups(target, granularity, breakdown):
        by_town = breakdown is Breakdown.TOWN
        span = (start, end)
        text = _town_series(
            target, sql, utility=utility, granularity=granularity, span=span, by_town=by_town
        )
        return text, sql.args
    kind, lo, hi = sql.arg(str(utility)), sql.arg(start), sql.arg(end)
    if granularity is Granularity.MIN15:
        conditions = [f"m.utility = {kind}", f"i.start >= {lo}", f"i.start < {hi}"]
        conditions += firm_conditions(target, sql, firm_id="m.firm_id", town="ft.town")
        firms = _joins(target, breakdown, firm_id="m.firm_id", at="i.start")
        text = (
            f"SELECT {group}i.start AS bucket, sum(i.energy) AS energy, "
            "coalesce(sum(i.energy) FILTER (WHERE i.estimated), 0) AS estimated "
            f"FROM intervals i JOIN meters m ON m.id = i.meter_id {firms}"
            f"WHERE {' AND '.join(conditions)} GROUP BY {group_by}"
        )
        return text, sql.args
    grain = sql.arg(_rollup_grain(granularity))
    conditions = [
        f"r.granularity = {grain}",
        f"r.utility = {kind}",
        f"r.bucket >= {lo}",
        f"r.bucket < {hi}",
    ]
    conditions += firm_conditions(target, sql, firm_id="r.firm_id", town="ft.town")
    firms = _joins(target, breakdown, firm_id="r.firm_id", at="r.bucket")
    text = (
        f"SELECT {group}{_bucket(granularity)} AS bucket, sum(r.energy) AS energy, "
        f"sum(r.estimated) AS estimated FROM firm_rollups r {firms}"
        f"WHERE {' AND '.join(conditions)} GROUP BY {group_by}"
    )
    return text, sql.args

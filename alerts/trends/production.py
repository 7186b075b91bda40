"""Production state per firm for one ISO week, judged from its load against its own past.

The baseline is the median of the firm's weekly energy over the ``baseline_weeks`` weeks
before (weeks without any data are left out, not counted as zero). With ``ratio`` = this
week's energy / baseline:

* running: ``ratio >= running_ratio`` (default 0.7), or a zero baseline and some energy now;
* reduced: ``stopped_ratio <= ratio < running_ratio`` (default 0.1 .. 0.7);
* stopped: ``ratio < stopped_ratio``, or a zero baseline and zero energy now;
* unknown: no data this week, or no baseline week at all.

A week still in progress is judged against the baseline scaled by the part of the week
elapsed. Firms judged are those with a meter of the utility in service during the week.
Shares are of the firms whose state is known.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import polars as pl

from alerts.errors import InvalidQueryError
from alerts.trends.paging import FIRM_SCHEMA, Page, firm_label_columns, take
from alerts.trends.queries import WEEK_BUCKET, Sql, fetch_frame, firm_conditions
from alerts.trends.scope import Target
from meterhub.reading import Utility
from meterhub.settings import Settings

WEEK = timedelta(weeks=1)


class State(enum.StrEnum):
    RUNNING = "running"
    REDUCED = "reduced"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Rule:
    baseline_weeks: int = 4
    running_ratio: float = 0.7
    stopped_ratio: float = 0.1

    @classmethod
    def of(cls, settings: Settings) -> Rule:
        return cls(
            baseline_weeks=settings.production_baseline_weeks,
            running_ratio=settings.production_running_ratio,
            stopped_ratio=settings.production_stopped_ratio,
        )


LABELS = {
    **firm_label_columns(),
    "state": "生产状态",
    "energy": "本周用量",
    "baseline": "基准周用量(中位数)",
    "baseline_weeks": "基准周数",
    "ratio": "本周/基准",
}

_SCHEMA = pl.Schema(
    {
        **FIRM_SCHEMA,
        "energy": pl.Float64(),
        "baseline": pl.Float64(),
        "baseline_weeks": pl.Int64(),
    }
)


def _query(target: Target, utility: Utility, week: datetime, rule: Rule) -> tuple[str, Sql]:
    sql = Sql()
    kind, ws, we = sql.arg(str(utility)), sql.arg(week), sql.arg(week + WEEK)
    since = sql.arg(week - rule.baseline_weeks * WEEK)
    conditions = [
        f"m.utility = {kind}",
        f"m.installed_at < {we}",
        f"(m.removed_at IS NULL OR m.removed_at > {ws})",
        *firm_conditions(target, sql, firm_id="f.id"),
    ]
    text = f"""
    WITH judged AS (
        SELECT DISTINCT f.id, f.credit_code, f.name, f.town, f.industry
        FROM firms f JOIN meters m ON m.firm_id = f.id
        WHERE {" AND ".join(conditions)}),
    weeks AS (
        SELECT r.firm_id, {WEEK_BUCKET.format("r.bucket")} AS week,
               sum(r.energy) AS energy
        FROM firm_rollups r
        WHERE r.granularity = 'day' AND r.utility = {kind} AND r.bucket >= {since}
          AND r.bucket < {we} AND r.firm_id IN (SELECT id FROM judged)
        GROUP BY 1, 2)
    SELECT j.id, j.credit_code, j.name, j.town, j.industry,
           sum(w.energy) FILTER (WHERE w.week = {ws}),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY w.energy) FILTER (WHERE w.week < {ws}),
           count(w.week) FILTER (WHERE w.week < {ws})
    FROM judged j LEFT JOIN weeks w ON w.firm_id = j.id
    GROUP BY j.id, j.credit_code, j.name, j.town, j.industry
    """
    return text, sql


async def production_state(
    pool: asyncpg.Pool,
    target: Target,
    *,
    week: datetime,
    utility: Utility,
    rule: Rule,
    now: datetime,
) -> tuple[pl.DataFrame, float]:
    """Every judged firm with its state, and the elapsed fraction of the week (1 when over)."""
    if now <= week:
        raise InvalidQueryError("the week has not started yet")
    elapsed = min(1.0, (now - week) / WEEK)
    text, sql = _query(target, utility, week, rule)
    frame = await fetch_frame(pool, text, sql, _SCHEMA)
    expected = pl.col("baseline") * elapsed
    ratio = pl.when(expected > 0).then(pl.col("energy") / expected)
    state = (
        pl.when(pl.col("energy").is_null() | pl.col("baseline").is_null())
        .then(pl.lit(State.UNKNOWN.value))
        .when(expected == 0)
        .then(
            pl.when(pl.col("energy") > 0)
            .then(pl.lit(State.RUNNING.value))
            .otherwise(pl.lit(State.STOPPED.value))
        )
        .when(ratio >= rule.running_ratio)
        .then(pl.lit(State.RUNNING.value))
        .when(ratio >= rule.stopped_ratio)
        .then(pl.lit(State.REDUCED.value))
        .otherwise(pl.lit(State.STOPPED.value))
    )
    frame = frame.with_columns(
        state=state,
        ratio=ratio.round(6),
        energy=pl.col("energy").round(3),
        baseline=pl.col("baseline").round(3),
    )
    order = {s.value: i for i, s in enumerate(State)}
    frame = frame.with_columns(pl.col("state").replace_strict(order).alias("_order")).sort(
        "_order", "firm_id"
    )
    return frame.drop("_order"), elapsed


def listing(frame: pl.DataFrame, *, state: State | None, limit: int, offset: int) -> Page:
    """The firms in ``state`` (all when None), one page of them."""
    listed = frame if state is None else frame.filter(pl.col("state") == state.value)
    return take(listed, limit=limit, offset=offset)


def summary(frame: pl.DataFrame) -> dict[str, dict[str, float | int]]:
    """Counts per state, and shares of the firms whose state is known."""
    counts = {s.value: 0 for s in State}
    for state, n in frame.group_by("state").len().iter_rows():
        counts[state] = n
    known = sum(n for s, n in counts.items() if s != State.UNKNOWN)
    shares: dict[str, float | int] = {
        s: round(counts[s] / known, 6) if known else 0.0 for s in counts if s != State.UNKNOWN
    }
    return {"counts": dict(counts), "shares": shares}

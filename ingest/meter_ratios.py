"""The ratio histories (`meter_ratios`) of the meters a derivation run touches.

Read afresh in every run, in the run's transaction: a ratio edit commits its periods and
its dirty marks together, so the run that claims the marks sees the periods too (the
in-memory `MeterRegistry` may be up to a minute old).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from meterhub.meter import MeterInfo
from meterhub.ratios import RatioHistory

_SELECT = """
SELECT meter_id, valid_from, multiplier::float8 AS multiplier FROM meter_ratios
WHERE meter_id = ANY($1::bigint[]) ORDER BY meter_id, valid_from
"""


async def ratio_histories(
    conn: asyncpg.Connection, meter_ids: Iterable[int]
) -> dict[int, RatioHistory]:
    """The history of each of ``meter_ids`` that has one (every registered meter does)."""
    periods: dict[int, list[tuple[datetime, float]]] = {}
    for row in await conn.fetch(_SELECT, list(set(meter_ids))):
        periods.setdefault(row["meter_id"], []).append((row["valid_from"], row["multiplier"]))
    return {meter_id: RatioHistory.of(p) for meter_id, p in periods.items()}


def with_history(meter: MeterInfo, histories: dict[int, RatioHistory]) -> MeterInfo:
    """``meter`` deriving with its ratio history (as it is when it has none)."""
    history = histories.get(meter.meter_id)
    return meter if history is None else dataclasses.replace(meter, ratios=history)

"""What keeps a meter's energy across its registry edits: the register readings of a swap,
the event that says a swap's energy is unknown, CT/PT ratio periods, and the dirty marks
that make the interval worker derive the affected windows again.

A swap's final reading (old meter) and initial reading (new meter) are stored as readings
at the swap instant with ``source = 'swap'``: the normal derivation then closes the old
meter's last pair with the first and opens the new meter's first pair with the second.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
from pydantic import BaseModel, Field, model_validator

from meterhub.db import Conn
from registry import audit
from registry.errors import ConflictError, InvalidError, NotFoundError
from registry.fields import Instant, JsonObject, Text
from registry.keys import Principal

#: `readings.source` of the register readings given with a meter swap.
SWAP_SOURCE = "swap"
#: The `interval_events` kind of a swap whose final or initial reading is unknown.
UNKNOWN_SWAP_ENERGY = "unknown_swap_energy"

_MARK = (
    "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs) "
    "VALUES (ARRAY[$1::bigint], ARRAY[$2::timestamptz], ARRAY[$3::timestamptz])"
)
_SWAP_READING = """
WITH added AS (
    INSERT INTO readings (meter_id, ts, energy, source) VALUES ($1, $2, $3, $4)
    ON CONFLICT (meter_id, ts) DO NOTHING RETURNING energy
)
SELECT energy FROM added
UNION ALL
SELECT energy FROM readings WHERE meter_id = $1 AND ts = $2 AND NOT EXISTS (SELECT FROM added)
"""
_EVENT = """
INSERT INTO interval_events (meter_id, kind, start, "end", detail)
VALUES ($1, $2, $3, $3, $4::jsonb) ON CONFLICT (meter_id, kind, start) DO NOTHING
"""


async def record_swap(
    conn: Conn,
    *,
    old_id: int,
    new_id: int,
    at: datetime,
    final: Decimal | None,
    initial: Decimal | None,
) -> None:
    """The register readings of the swap at ``at`` (``final``: the old meter's, ``initial``:
    the new one's, None when unknown: then an `UNKNOWN_SWAP_ENERGY` event on that meter)."""
    for meter_id, energy, role in ((old_id, final, "final"), (new_id, initial, "initial")):
        if energy is None:
            detail = {"old_meter": old_id, "new_meter": new_id, "missing": role}
            await record_unknown_swap_energy(conn, meter_id=meter_id, at=at, detail=detail)
        else:
            await record_swap_reading(conn, meter_id=meter_id, at=at, energy=energy, role=role)


async def record_swap_reading(
    conn: Conn, *, meter_id: int, at: datetime, energy: Decimal, role: str
) -> None:
    """Store ``energy`` (the register, meter side) at ``at`` and mark it for derivation;
    `ConflictError` if the meter already has a different reading then."""
    stored = await conn.fetchval(_SWAP_READING, meter_id, at, float(energy), SWAP_SOURCE)
    if stored is None or abs(stored - float(energy)) > 1e-9:
        raise ConflictError(
            f"meter {meter_id} already has the reading {stored} at {at.isoformat()}, "
            f"not the {role} reading {energy}"
        )
    await conn.execute(_MARK, meter_id, at, at)


async def record_unknown_swap_energy(
    conn: Conn, *, meter_id: int, at: datetime, detail: dict[str, object]
) -> None:
    """The event saying the energy of ``meter_id`` on its side of the swap at ``at`` is lost."""
    await conn.execute(_EVENT, meter_id, UNKNOWN_SWAP_ENERGY, at, orjson.dumps(detail).decode())


class Replacement(BaseModel):
    """A meter swap: the old meter is closed at ``at`` and the new one opened at ``at``.

    The registers read at the swap keep its energy: the old meter's final reading closes
    its last pair, the new one's initial reading opens its first. Leave one out only when it
    is unknown: the energy on that side of the swap is then lost, and an
    ``unknown_swap_energy`` event on that meter at ``at`` says so."""

    code: Text = Field(min_length=1, description="the new meter's asset number")
    at: Instant = Field(description="when the swap happened (with a UTC offset)")
    address: JsonObject | None = Field(default=None, description="default: the old one's")
    model: Text | None = None
    ct_ratio: Decimal | None = Field(default=None, gt=0)
    pt_ratio: Decimal | None = Field(default=None, gt=0)
    old_final_energy: Decimal | None = Field(
        default=None,
        ge=0,
        description="the old meter's register at the swap, kWh (m3) on the meter side",
        examples=["10234.56"],
    )
    new_initial_energy: Decimal | None = Field(
        default=None,
        ge=0,
        description="the new meter's register at the swap, kWh (m3) on the meter side",
        examples=["0.00"],
    )


class RatioChange(BaseModel):
    """A CT/PT ratio holding from ``valid_from`` (until the next period, if any)."""

    valid_from: Instant = Field(
        description="from when (with a UTC offset)", examples=["2026-03-01T10:00:00+08:00"]
    )
    ct_ratio: Decimal | None = Field(
        default=None, gt=0, description="default: the one valid then", examples=["80"]
    )
    pt_ratio: Decimal | None = Field(default=None, gt=0, description="default: the one valid then")

    @model_validator(mode="after")
    def _changes_something(self) -> RatioChange:
        if self.ct_ratio is None and self.pt_ratio is None:
            raise ValueError("give ct_ratio, pt_ratio or both")
        return self


class RatioPeriod(BaseModel):
    valid_from: datetime
    ct_ratio: Decimal
    pt_ratio: Decimal
    multiplier: Decimal


_PERIODS = """
SELECT valid_from, ct_ratio, pt_ratio, multiplier FROM meter_ratios
WHERE meter_id = $1 ORDER BY valid_from
"""
_UPSERT_PERIOD = """
INSERT INTO meter_ratios (meter_id, valid_from, ct_ratio, pt_ratio) VALUES ($1, $2, $3, $4)
ON CONFLICT (meter_id, valid_from) DO UPDATE
SET ct_ratio = EXCLUDED.ct_ratio, pt_ratio = EXCLUDED.pt_ratio, recorded_at = now()
"""
# The readings whose intervals may change: from valid_from to the last one before the next
# period (the worker widens the mark to the neighbouring readings).
_LAST_AFFECTED = """
SELECT coalesce(max(ts), $2) FROM readings
WHERE meter_id = $1 AND energy IS NOT NULL AND ts >= $2
  AND ts < coalesce((SELECT min(valid_from) FROM meter_ratios
                     WHERE meter_id = $1 AND valid_from > $2), 'infinity')
"""


async def ratio_periods(conn: Conn, meter_id: int) -> list[RatioPeriod]:
    return [RatioPeriod(**dict(r)) for r in await conn.fetch(_PERIODS, meter_id)]


async def change_ratio(
    conn: Conn, *, principal: Principal, meter_id: int, change: RatioChange
) -> list[RatioPeriod]:
    """Record ``change`` (a period starting at ``valid_from`` replaces one starting then),
    keep the meter's own ratios at its latest period's, and mark the period's readings for
    derivation again, so late and past readings are derived with the ratio that held then.
    Returns all the meter's periods."""
    async with conn.transaction():
        meter = await conn.fetchrow(
            "SELECT installed_at, removed_at FROM meters WHERE id = $1 FOR UPDATE", meter_id
        )
        if meter is None:
            raise NotFoundError(f"no meter {meter_id}")
        if change.valid_from < meter["installed_at"]:
            raise InvalidError("a ratio cannot hold from before the meter's installation")
        removed_at = meter["removed_at"]
        if removed_at is not None and change.valid_from >= removed_at:
            raise InvalidError("a ratio cannot hold from the meter's removal on")
        periods = await _change(conn, meter_id=meter_id, change=change)
        await audit.record(
            conn,
            principal,
            action="meter.ratio",
            target=f"meter:{meter_id}",
            detail=change.model_dump(mode="json"),
        )
        return periods


async def _change(conn: Conn, *, meter_id: int, change: RatioChange) -> list[RatioPeriod]:
    periods = await ratio_periods(conn, meter_id)
    then = ([p for p in periods if p.valid_from <= change.valid_from] or periods)[-1]
    ct = then.ct_ratio if change.ct_ratio is None else change.ct_ratio
    pt = then.pt_ratio if change.pt_ratio is None else change.pt_ratio
    await conn.execute(_UPSERT_PERIOD, meter_id, change.valid_from, ct, pt)
    if change.valid_from >= periods[-1].valid_from:  # the latest period: the meter's own
        await conn.execute(
            "UPDATE meters SET ct_ratio = $2, pt_ratio = $3 WHERE id = $1", meter_id, ct, pt
        )
    last = await conn.fetchval(_LAST_AFFECTED, meter_id, change.valid_from)
    await conn.execute(_MARK, meter_id, change.valid_from, last)
    return await ratio_periods(conn, meter_id)

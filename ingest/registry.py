"""An in-memory view of the `meters` registry for validation, refreshed from the database."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import numpy as np
from numpy.typing import NDArray

from ingest.interval_grid import to_micros
from meterhub.db import fingerprint
from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, Utility
from meterhub.runtime import in_slices

_SELECT = """
SELECT id, firm_id, utility, multiplier::float8 AS multiplier, rollover::float8 AS rollover,
       max_power::float8 AS max_power, installed_at, removed_at
FROM meters
"""


def _meter(row: asyncpg.Record) -> MeterInfo:
    return MeterInfo(
        meter_id=row["id"],
        firm_id=row["firm_id"],
        utility=Utility(row["utility"]),
        multiplier=row["multiplier"],
        rollover=row["rollover"],
        max_power=row["max_power"],
        installed_at=row["installed_at"].astimezone(LOCAL_TZ),
        removed_at=row["removed_at"] and row["removed_at"].astimezone(LOCAL_TZ),
    )


#: NOTIFY channel of edits to existing meters (migrations/0005_meter_changes.sql).
METERS_CHANGED = "meterhub_meters_changed"

_NEVER = int(np.iinfo(np.int64).max)
_NOTHING = int(np.iinfo(np.int64).min)


@dataclass(frozen=True, slots=True)
class MeterLimits:
    """What validation checks, as arrays aligned with a list of meter ids; times are
    microseconds since the Unix epoch (`ingest.interval_grid.to_micros`)."""

    known: NDArray[np.bool_]
    installed: NDArray[np.int64]
    removed: NDArray[np.int64]
    rollover: NDArray[np.float64]
    max_power: NDArray[np.float64]
    #: The newest reading committed by this process (the minimum int64 when none).
    committed: NDArray[np.int64]


def _limits_of(meter: MeterInfo | None) -> tuple[bool, int, int, float, float]:
    if meter is None:
        return False, _NEVER, _NOTHING, 0.0, 0.0
    removed = _NEVER if meter.removed_at is None else to_micros(meter.removed_at)
    return True, to_micros(meter.installed_at), removed, meter.rollover, meter.max_power


class MeterRegistry:
    """Meters by id. Unknown ids are looked up on demand; everything is reloaded when the
    database announces an edit to a meter (`follow`), and at the latest every ``max_age``
    seconds, so that edits (removal dates, ratios) reach validation."""

    def __init__(self, *, max_age: float = 60.0) -> None:
        self._meters: dict[int, MeterInfo] = {}
        #: The newest reading time (µs) this process has committed per meter: a reading
        #: after it cannot be a duplicate of one written here, so it may skip the merge.
        self._committed: dict[int, int] = {}
        self._limits: dict[int, tuple[bool, int, int, float, float]] = {}
        self._loaded_at: float | None = None  # monotonic time of the last reload; None: never
        self._max_age = max_age
        self._print: tuple[int, int] | None = None  # the `fingerprint` of what was loaded
        self._edits = 0  # edits heard of (`invalidate`)

    def get(self, meter_id: int) -> MeterInfo | None:
        return self._meters.get(meter_id)

    @property
    def meters(self) -> dict[int, MeterInfo]:
        """The meters by id (read-only use: the hot path looks them up directly)."""
        return self._meters

    async def refresh(self, conn: asyncpg.Connection, meter_ids: Iterable[int] = ()) -> None:
        """Reload everything if stale, else look up the ``meter_ids`` not known yet."""
        if self._loaded_at is None or time.monotonic() - self._loaded_at > self._max_age:
            await self._reload(conn)
            return
        missing = [m for m in set(meter_ids) if m not in self._meters]
        if missing:
            rows = await conn.fetch(_SELECT + " WHERE id = ANY($1::bigint[])", missing)
            self._meters.update({row["id"]: _meter(row) for row in rows})
            for meter_id in missing:
                self._limits.pop(meter_id, None)

    async def _reload(self, conn: asyncpg.Connection) -> None:
        """Everything again, unless the table holds what was loaded last (no edit was
        announced since: `invalidate` forgets the fingerprint)."""
        edits = self._edits
        current = await fingerprint(conn, _SELECT)
        if current != self._print:
            meters: dict[int, MeterInfo] = {}
            async for rows in in_slices(await conn.fetch(_SELECT)):
                meters.update((row["id"], _meter(row)) for row in rows)
            self._meters, self._limits, self._print = meters, {}, current
        if edits == self._edits:  # else an edit was announced meanwhile: reload again
            self._loaded_at = time.monotonic()

    def limits(self, meter_ids: NDArray[np.int64]) -> MeterLimits:
        """The limits of ``meter_ids`` (unknown ones have ``known`` False)."""
        ids = meter_ids.tolist()
        columns = list(zip(*[self._limits_for(m) for m in ids], strict=True)) or [()] * 5
        committed = self._committed
        return MeterLimits(
            known=np.array(columns[0], dtype=np.bool_),
            installed=np.array(columns[1], dtype=np.int64),
            removed=np.array(columns[2], dtype=np.int64),
            rollover=np.array(columns[3], dtype=np.float64),
            max_power=np.array(columns[4], dtype=np.float64),
            committed=np.array([committed.get(m, _NOTHING) for m in ids], dtype=np.int64),
        )

    def _limits_for(self, meter_id: int) -> tuple[bool, int, int, float, float]:
        found = self._limits.get(meter_id)
        if found is None:
            found = self._limits[meter_id] = _limits_of(self._meters.get(meter_id))
        return found

    def note_committed(self, meter_ids: NDArray[np.int64], newest: NDArray[np.int64]) -> None:
        """Remember the newest committed reading time (µs) per meter."""
        committed = self._committed
        for meter_id, ts in zip(meter_ids.tolist(), newest.tolist(), strict=True):
            if ts > committed.get(meter_id, _NOTHING):
                committed[meter_id] = ts

    def invalidate(self) -> None:
        """Reload everything before the next validation."""
        self._loaded_at, self._print = None, None
        self._edits += 1

    async def follow(self, conn: asyncpg.Connection) -> None:
        """Invalidate on every edit to existing meters, as ``conn`` hears of it (and now:
        edits made while no connection listened were not heard)."""
        await conn.add_listener(METERS_CHANGED, self._heard)
        self.invalidate()

    def _heard(self, *_: object) -> None:
        self.invalidate()

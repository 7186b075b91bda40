"""An in-memory view of the `meters` registry for validation, refreshed from the database."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from meterhub.meter import MeterInfo
from meterhub.reading import LOCAL_TZ, Utility

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


class MeterRegistry:
    """Meters by id. Unknown ids are looked up on demand; everything is reloaded every
    ``max_age`` seconds so that edits (removal dates, ratios) reach validation."""

    def __init__(self, *, max_age: float = 60.0) -> None:
        self._meters: dict[int, MeterInfo] = {}
        #: The newest reading time this process has committed per meter: a reading after
        #: it cannot be a duplicate of one written here, so it may skip the merge.
        self.committed: dict[int, datetime] = {}
        self._loaded_at = 0.0
        self._max_age = max_age

    def get(self, meter_id: int) -> MeterInfo | None:
        return self._meters.get(meter_id)

    @property
    def meters(self) -> dict[int, MeterInfo]:
        """The meters by id (read-only use: the hot path looks them up directly)."""
        return self._meters

    async def refresh(self, conn: asyncpg.Connection, meter_ids: Iterable[int] = ()) -> None:
        """Reload everything if stale, else look up the ``meter_ids`` not known yet."""
        if time.monotonic() - self._loaded_at > self._max_age:
            rows = await conn.fetch(_SELECT)
            self._meters = {row["id"]: _meter(row) for row in rows}
            self._loaded_at = time.monotonic()
            return
        missing = [m for m in set(meter_ids) if m not in self._meters]
        if missing:
            rows = await conn.fetch(_SELECT + " WHERE id = ANY($1::bigint[])", missing)
            self._meters.update({row["id"]: _meter(row) for row in rows})

    def note_committed(self, ranges: dict[int, tuple[datetime, datetime]]) -> None:
        committed = self.committed
        for meter_id, (_, newest) in ranges.items():
            known = committed.get(meter_id)
            if known is None or newest > known:
                committed[meter_id] = newest

    def invalidate(self) -> None:
        self._loaded_at = 0.0

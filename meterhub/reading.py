"""The one reading type every producer hands to the ingest path."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

#: Day, week and month buckets are computed in this zone, never in UTC.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
#: LOCAL_TZ's offset from UTC in seconds: +08:00 all year since 1991 (no daylight saving),
#: so wall-clock grids can be computed with plain arithmetic.
LOCAL_OFFSET_S = 8 * 3600


class Utility(enum.StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    GAS = "gas"


#: The unit of a meter's cumulative register, by utility.
UTILITY_UNIT: dict[Utility, str] = {
    Utility.ELECTRICITY: "kWh",
    Utility.WATER: "m3",
    Utility.GAS: "m3",
}


class Quality(enum.IntFlag):
    """Bit flags describing how far a reading can be trusted; 0 means measured and good."""

    GOOD = 0
    ESTIMATED = 1
    CLOCK_DRIFT = 2
    SUBSTITUTED = 4
    BACKFILL = 8


#: Names of the per-tariff cumulative registers, in DL/T 645 tariff order 1..4.
TARIFFS: tuple[str, ...] = ("sharp", "peak", "flat", "valley")


class Reading(NamedTuple):
    """One snapshot of a meter's registers at the meter's own time.

    A named tuple: immutable, cheap to build (producers make millions), and already the
    row, in `READING_COLUMNS` order, that the ingest path turns into columns.

    ``energy`` is the cumulative forward register in the meter's unit (kWh for electricity,
    m3 for water and gas), on the secondary side: the meter's CT x PT multiplier is applied
    when intervals are derived, not here. ``power`` is total active power in kW.
    ``ts`` must be timezone-aware and is the meter's time, never the time of fetching.

    Example::

        Reading(meter_id=17, ts=datetime(2026, 3, 1, 8, 15, tzinfo=LOCAL_TZ),
                energy=1206.42, power=3.5, source="dlt645")
    """

    meter_id: int
    ts: datetime
    energy: float | None = None
    energy_sharp: float | None = None
    energy_peak: float | None = None
    energy_flat: float | None = None
    energy_valley: float | None = None
    power: float | None = None
    voltage_a: float | None = None
    voltage_b: float | None = None
    voltage_c: float | None = None
    current_a: float | None = None
    current_b: float | None = None
    current_c: float | None = None
    power_factor: float | None = None
    quality: int = Quality.GOOD
    source: str = "unknown"


#: Measured value fields of a `Reading`, in the column order of the `readings` table.
VALUE_FIELDS: tuple[str, ...] = (
    "energy",
    "energy_sharp",
    "energy_peak",
    "energy_flat",
    "energy_valley",
    "power",
    "voltage_a",
    "voltage_b",
    "voltage_c",
    "current_a",
    "current_b",
    "current_c",
    "power_factor",
)

#: All columns of the `readings` table, in order; the COPY paths use this one list.
READING_COLUMNS: tuple[str, ...] = ("meter_id", "ts", *VALUE_FIELDS, "quality", "source")

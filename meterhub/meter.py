"""What the ingest path needs to know about a registered meter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meterhub.ratios import RatioHistory
from meterhub.reading import UTILITY_UNIT, Utility


@dataclass(slots=True, frozen=True)
class MeterInfo:
    """A row of the `meters` registry, reduced to what validation and intervals use.

    ``rollover`` is the value at which the cumulative register wraps to zero
    (1,000,000 for a XXXXXX.XX kWh register). ``max_power`` is the most the meter can
    deliver (kW, or m3/h for water and gas) on its own (secondary) side; the
    ``multiplier`` (CT x PT ratio) turns its register into primary-side consumption;
    ``ratios``, when given, is its history (`meter_ratios`) and takes precedence: each
    interval is derived with the multiplier valid at its start.
    """

    meter_id: int
    firm_id: int | None
    utility: Utility
    multiplier: float
    rollover: float
    max_power: float
    installed_at: datetime
    removed_at: datetime | None = None
    ratios: RatioHistory | None = None

    @property
    def unit(self) -> str:
        return UTILITY_UNIT[self.utility]

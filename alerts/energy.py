"""Energy accounting: standard coal (GB/T 2589) and CO2 from metered quantities.

1 kgce = 29 307 kJ. Electricity converts at the calorific equivalent (当量值, default
0.1229 kgce/kWh) or at the year's equal-value coal rate (等价值, default 0.3 kgce/kWh; the
per-mu "value added per unit energy" indicator uses it); natural gas at 1.2143 kgce/m3 and
fresh water at 0.2571 kgce/t. Every factor is a setting (``MHUB_KGCE_*``). CO2 from
electricity uses the year's grid emission factor (t CO2 per MWh, table
``grid_emission_factors``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meterhub.settings import Settings


class Basis(enum.StrEnum):
    CALORIFIC = "calorific"  # 当量值
    EQUAL_VALUE = "equal_value"  # 等价值


@dataclass(frozen=True, slots=True)
class Factors:
    """kgce per kWh, per m3 of gas and per t of water."""

    electricity: float
    gas: float
    water: float

    @classmethod
    def of(cls, settings: Settings, basis: Basis) -> Factors:
        kwh = (
            settings.kgce_per_kwh_equal_value
            if basis is Basis.EQUAL_VALUE
            else settings.kgce_per_kwh
        )
        return cls(kwh, settings.kgce_per_m3_gas, settings.kgce_per_t_water)

    def tce(self, *, kwh: float = 0.0, gas_m3: float = 0.0, water_t: float = 0.0) -> float:
        """Tonnes of standard coal for the given quantities."""
        return (kwh * self.electricity + gas_m3 * self.gas + water_t * self.water) / 1000


def co2_tonnes(kwh: float, tco2_per_mwh: float) -> float:
    """Tonnes of CO2 for ``kwh`` of grid electricity at a factor in t CO2 per MWh."""
    return kwh / 1000 * tco2_per_mwh

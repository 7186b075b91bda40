"""Which readings are surely good: the rules of `ingest.quarantine.check`, over columns.

A row this does not pass is judged one by one by `check`, which names the reason; so the
screen may be stricter than `check`, never looser (the tests hold it to that).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from ingest.columns import ReadingColumns
from ingest.interval_grid import to_micros
from ingest.quarantine import ENERGY_FIELDS, MAX_QUALITY, NON_NEGATIVE_FIELDS
from ingest.registry import MeterLimits
from meterhub.reading import VALUE_FIELDS

_FIELD = {name: i for i, name in enumerate(VALUE_FIELDS)}
_ENERGY = [_FIELD[name] for name in ENERGY_FIELDS]
_NON_NEGATIVE = [_FIELD[name] for name in NON_NEGATIVE_FIELDS]
_POWER = _FIELD["power"]
_POWER_FACTOR = _FIELD["power_factor"]
#: The first instant that exists in UTC (`ingest.quarantine.storable_ts`), µs.
_FIRST = to_micros(datetime.min.replace(tzinfo=UTC))


def surely_good(
    columns: ReadingColumns, limits: MeterLimits, meter: NDArray[np.intp], latest: int
) -> NDArray[np.bool_]:
    """True for each row that `check` would pass. ``limits`` is indexed by ``meter`` (each
    row's position in the limits' meter list); ``latest`` is the newest acceptable time,
    in µs since the Unix epoch."""
    ts, values, nulls = columns.ts, columns.values, columns.nulls
    good = ~columns.broken & limits.known[meter] & (ts >= _FIRST)
    good &= (ts >= limits.installed[meter]) & (ts <= latest) & (ts <= limits.removed[meter])
    good &= (columns.quality >= 0) & (columns.quality <= MAX_QUALITY)
    good &= ~nulls.all(axis=0)  # no_values
    with np.errstate(invalid="ignore"):  # comparisons with NaN are False, as wanted
        good &= (np.isfinite(values) | nulls).all(axis=0)
        good &= ((values[_NON_NEGATIVE] >= 0.0) | nulls[_NON_NEGATIVE]).all(axis=0)
        good &= ((values[_ENERGY] < limits.rollover[meter]) | nulls[_ENERGY]).all(axis=0)
        good &= (np.abs(values[_POWER]) <= limits.max_power[meter]) | nulls[_POWER]
        good &= (np.abs(values[_POWER_FACTOR]) <= 1.0) | nulls[_POWER_FACTOR]
    return good

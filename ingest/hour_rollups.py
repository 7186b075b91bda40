"""Hourly rollups summed from a pass's own derived intervals; pure, no I/O.

When every window of a derivation pass starts and ends on whole hours, the pass has just
written every interval of every hour it touches, so those hours' rollups are sums over its
own result, not a re-read of `intervals`. The sums are those of the SQL they replace
(`ingest.rollups`): per (meter, Asia/Shanghai hour) the energy and each tariff summed in
start order (a tariff NULL when none of its intervals has it), the energy of the estimated
intervals (0 when none), and the number of intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from ingest import pgcopy
from ingest.bulk_intervals import TARIFFS, BulkDerivation, group_sums
from ingest.interval_grid import OFFSET_US

HOUR = timedelta(hours=1)
_HOUR_US = 3_600_000_000

#: `meter_rollups` columns in the order `copy_columns` gives them.
COLUMNS = ("granularity", "meter_id", "bucket", "energy", *TARIFFS, "estimated", "intervals")


@dataclass(frozen=True, slots=True)
class HourSums:
    """One row per (meter, hour) with intervals, sorted by (meter, hour); NaN tariff = NULL."""

    meter_id: NDArray[np.int64]
    bucket: NDArray[np.int64]  # epoch microseconds of the hour's start
    energy: NDArray[np.float64]
    tariffs: NDArray[np.float64]  # shape (4, n)
    estimated: NDArray[np.float64]
    intervals: NDArray[np.int64]

    def copy_columns(self) -> list[pgcopy.Column]:
        """The rows as binary COPY columns for `meter_rollups` (see `COLUMNS`)."""
        kind = pgcopy.Kind
        nan = np.isnan(self.tariffs)
        return [
            pgcopy.Column(kind.TEXT, np.zeros(len(self.meter_id), dtype=np.int64), texts=["hour"]),
            pgcopy.Column(kind.BIGINT, self.meter_id),
            pgcopy.Column(kind.TIMESTAMPTZ, self.bucket),
            pgcopy.Column(kind.DOUBLE, self.energy),
            *[pgcopy.Column(kind.DOUBLE, self.tariffs[j], nan[j]) for j in range(4)],
            pgcopy.Column(kind.DOUBLE, self.estimated),
            pgcopy.Column(kind.INTEGER, self.intervals.astype(np.int32)),
        ]


def hour_bucket(start_us: NDArray[np.int64]) -> NDArray[np.int64]:
    """The start of the Asia/Shanghai hour of each time (epoch microseconds)."""
    return start_us - (start_us + OFFSET_US) % _HOUR_US


def hour_sums(result: BulkDerivation) -> HourSums:
    """The hourly rollups of the intervals in ``result`` (sorted by meter, start)."""
    bucket = hour_bucket(result.start)
    n = len(bucket)
    new = np.ones(n, dtype=bool)
    new[1:] = (result.meter_id[1:] != result.meter_id[:-1]) | (bucket[1:] != bucket[:-1])
    group = np.cumsum(new) - 1
    heads = np.flatnonzero(new)
    groups = len(heads)
    energy = group_sums(group, result.energy, groups)  # in order: the SQL sum's order
    estimated = group_sums(group, np.where(result.estimated, result.energy, 0.0), groups)
    tariffs = np.zeros((4, groups))
    present = np.zeros((4, groups), dtype=np.int64)
    for j in range(4):
        known = ~np.isnan(result.tariffs[j])
        tariffs[j] = group_sums(group, np.where(known, result.tariffs[j], 0.0), groups)
        present[j] = np.bincount(group[known], minlength=groups)
    return HourSums(
        meter_id=result.meter_id[heads],
        bucket=bucket[heads],
        energy=energy,
        tariffs=np.where(present > 0, tariffs, np.nan),
        estimated=estimated,
        intervals=np.diff(np.append(heads, n)).astype(np.int64),
    )

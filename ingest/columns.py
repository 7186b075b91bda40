"""Readings as numpy columns: the form the writer validates, de-duplicates and COPYs in
bulk, so that the per-reading Python work is one attribute fetch and a dictionary hit.

A value the columns cannot hold faithfully (a naive or non-datetime timestamp, a meter id
or a value of the wrong type) marks its row ``broken``: such rows are judged one by one
from the original `Reading`, exactly as before they were columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from ingest import pgcopy
from ingest.interval_grid import to_micros
from meterhub.reading import VALUE_FIELDS, Reading
from meterhub.runtime import gc_paused

_BROKEN_TS = np.iinfo(np.int64).min


class _Micros(dict[object, int]):
    """Timestamp -> microseconds, computed once per distinct timestamp (a collection cycle
    shares one time across all its meters)."""

    def __missing__(self, ts: object) -> int:
        try:
            us = to_micros(ts) if isinstance(ts, datetime) else _BROKEN_TS
        except ValueError:  # naive
            us = _BROKEN_TS
        self[ts] = us
        return us


@dataclass(slots=True)
class ReadingColumns:
    """``values`` and ``nulls`` are (len(VALUE_FIELDS), n): one row per value field."""

    meter_id: NDArray[np.int64]
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    nulls: NDArray[np.bool_]
    quality: NDArray[np.int64]
    source: NDArray[np.int64]
    sources: tuple[str, ...]
    broken: NDArray[np.bool_]
    originals: Sequence[Reading]

    def __len__(self) -> int:
        return len(self.meter_id)

    def reading(self, row: int) -> Reading:
        return self.originals[row]

    def same_values(self, a: int, b: int) -> bool:
        """Whether rows ``a`` and ``b`` carry the same measured values (absent alike)."""
        present = ~self.nulls[:, a]
        return bool(
            np.array_equal(present, ~self.nulls[:, b])
            and np.array_equal(self.values[present, a], self.values[present, b])
        )

    def copy_columns(self, rows: NDArray[np.intp]) -> list[pgcopy.Column]:
        """The rows' COPY columns, in `READING_COLUMNS` order."""
        kind = pgcopy.Kind
        columns = [
            pgcopy.Column(kind.BIGINT, self.meter_id[rows]),
            pgcopy.Column(kind.TIMESTAMPTZ, self.ts[rows]),
        ]
        values, nulls = self.values[:, rows], self.nulls[:, rows]
        columns += [
            pgcopy.Column(kind.DOUBLE, values[i], nulls[i]) for i in range(len(VALUE_FIELDS))
        ]
        columns += [
            pgcopy.Column(kind.SMALLINT, self.quality[rows]),
            pgcopy.Column(kind.TEXT, self.source[rows], texts=self.sources),
        ]
        return columns


def from_readings(readings: Sequence[Reading]) -> ReadingColumns:
    with gc_paused():
        return _from_readings(readings)


def _from_readings(readings: Sequence[Reading]) -> ReadingColumns:
    n = len(readings)
    if n == 0:
        return _empty(readings)
    # A Reading is a tuple in READING_COLUMNS order: transposing gives the columns.
    meter, stamps, *values, quality, source = zip(*readings, strict=True)
    broken = np.zeros(n, dtype=np.bool_)
    meter_id = _integers(meter, broken)
    ts = np.fromiter(map(_Micros().__getitem__, stamps), dtype=np.int64, count=n)
    broken |= ts == _BROKEN_TS
    floats, nulls = _floats(values, broken)
    codes, sources = _codes(source)
    return ReadingColumns(
        meter_id=meter_id,
        ts=ts,
        values=floats,
        nulls=nulls,
        quality=_integers(quality, broken),
        source=codes,
        sources=sources,
        broken=broken,
        originals=readings,
    )


def _empty(readings: Sequence[Reading]) -> ReadingColumns:
    fields = len(VALUE_FIELDS)
    return ReadingColumns(
        meter_id=np.zeros(0, dtype=np.int64),
        ts=np.zeros(0, dtype=np.int64),
        values=np.zeros((fields, 0)),
        nulls=np.zeros((fields, 0), dtype=np.bool_),
        quality=np.zeros(0, dtype=np.int64),
        source=np.zeros(0, dtype=np.int64),
        sources=(),
        broken=np.zeros(0, dtype=np.bool_),
        originals=readings,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _integers(column: Sequence[object], broken: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Integers (subclasses such as `Quality` included); anything else breaks its row."""
    if all(issubclass(k, int) and not issubclass(k, bool) for k in set(map(type, column))):
        try:
            return np.array(column, dtype=np.int64)
        except OverflowError:
            pass
    good = [_is_int(v) for v in column]
    broken |= ~np.array(good, dtype=np.bool_)
    return np.array([v if ok else 0 for v, ok in zip(column, good, strict=True)], dtype=np.int64)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


_FLOAT_TYPES = {float, int, type(None)}


def _floats(
    columns: Sequence[Sequence[object]], broken: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The value fields as floats (NaN where absent) and the mask of absent ones."""
    if set(map(type, chain.from_iterable(columns))) <= _FLOAT_TYPES:
        floats = np.array(columns, dtype=np.float64)  # None becomes NaN
    else:  # numpy would also take "1.5" for 1.5: judge the odd ones one by one
        floats = np.array([_float_column(c, broken) for c in columns], dtype=np.float64)
    nulls = np.zeros(floats.shape, dtype=np.bool_)
    nan = np.isnan(floats)
    for field in np.flatnonzero(nan.any(axis=1)).tolist():
        column = columns[field]
        if nan[field].all() and column.count(None) == len(column):  # e.g. a water meter's
            nulls[field] = True
        else:
            rows = np.flatnonzero(nan[field]).tolist()
            nulls[field, rows] = [column[row] is None for row in rows]
    return floats, nulls


def _float_column(column: Sequence[object], broken: NDArray[np.bool_]) -> list[float]:
    out = []
    for row, value in enumerate(column):
        if _is_number(value):
            try:
                out.append(math.nan if value is None else float(value))  # type: ignore[arg-type]
                continue
            except OverflowError:  # an int too large for a float
                pass
        broken[row] = True
        out.append(math.nan)
    return out


def _codes(column: Sequence[object]) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """Each source as a code into the tuple of distinct sources."""
    distinct = set(column)
    if len(distinct) == 1:
        return np.zeros(len(column), dtype=np.int64), (str(distinct.pop()),)
    texts: dict[str, int] = {}
    codes = [texts.setdefault(str(s), len(texts)) for s in column]
    return np.array(codes, dtype=np.int64), tuple(texts)

"""PostgreSQL binary COPY data from numpy columns (pure: arrays in, bytes out).

Rows that share their NULL pattern and the byte lengths of their texts have one fixed
layout, so each such group is written as one numpy structured array: no Python work per
row. (Grouping by the texts themselves would make a group per distinct text: a collector's
batch holds a source per link, thousands of groups of a row or two.) The format
(PostgreSQL docs, "COPY ... BINARY"): a signature header, then per row an int16 field
count and per field an int32 length (-1 for NULL) followed by the value in network byte
order; an int16 -1 ends the data.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)


class Kind(enum.Enum):
    """A column's PostgreSQL type."""

    BIGINT = "bigint"
    INTEGER = "integer"
    SMALLINT = "smallint"
    DOUBLE = "double precision"
    BOOLEAN = "boolean"
    #: ``data``: microseconds since the Unix epoch (`ingest.interval_grid.to_micros`).
    TIMESTAMPTZ = "timestamptz"
    #: ``data`` holds codes into ``texts``.
    TEXT = "text"


#: The wire layout (big-endian numpy dtype) of each fixed-size kind.
_WIRE = {
    Kind.BIGINT: ">i8",
    Kind.INTEGER: ">i4",
    Kind.SMALLINT: ">i2",
    Kind.DOUBLE: ">f8",
    Kind.BOOLEAN: "u1",
    Kind.TIMESTAMPTZ: ">i8",
}
#: PostgreSQL counts binary timestamps from 2000-01-01 UTC.
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    microseconds=1
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column for COPY. ``nulls`` marks absent values (their ``data`` is ignored)."""

    kind: Kind
    data: NDArray[np.generic]
    nulls: NDArray[np.bool_] | None = None
    texts: Sequence[str] = ()


def encode(columns: Sequence[Column]) -> bytes:
    """Binary COPY data (header to trailer) for the rows of ``columns`` (equal lengths)."""
    rows = len(columns[0].data) if columns else 0
    if any(len(c.data) != rows for c in columns):
        raise ValueError("COPY columns differ in length")
    texts = {i: _Texts.of(c.texts) for i, c in enumerate(columns) if c.kind is Kind.TEXT}
    parts = [HEADER]
    for members in _groups(columns, texts, rows):
        parts.append(_encode_group(columns, texts, members))
    parts.append(TRAILER)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class _Texts:
    """A text column's distinct values as UTF-8: their byte lengths, and all of them in
    one fixed-width array (narrower fields take their first bytes)."""

    lengths: NDArray[np.int64]
    encoded: NDArray[np.bytes_]

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Texts:
        encoded = [t.encode() for t in texts]
        width = max((len(e) for e in encoded), default=0)
        return cls(
            np.array([len(e) for e in encoded], dtype=np.int64),
            np.array(encoded, dtype=f"S{max(width, 1)}"),
        )


def _groups(
    columns: Sequence[Column], texts: dict[int, _Texts], rows: int
) -> list[NDArray[np.intp]]:
    """Row numbers grouped by layout: the same NULL pattern and the same text lengths."""
    key = np.zeros(rows, dtype=np.int64)
    for i, column in enumerate(columns):
        if column.kind is Kind.TEXT:
            widths, of_code = np.unique(texts[i].lengths, return_inverse=True)
            key = key * max(1, len(widths)) + of_code[column.data.astype(np.intp)]
        if column.nulls is not None:
            key = key * 2 + column.nulls
    if rows == 0:
        return []
    if key.min() == key.max():
        return [np.arange(rows)]
    _, inverse = np.unique(key, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


def _encode_group(
    columns: Sequence[Column], texts: dict[int, _Texts], members: NDArray[np.intp]
) -> bytes:
    first = int(members[0])
    fields: list[tuple[str, str]] = [("count", ">i2")]
    values: list[tuple[str, object]] = [("count", len(columns))]
    for i, column in enumerate(columns):
        if column.nulls is not None and column.nulls[first]:
            fields.append((f"n{i}", ">i4"))
            values.append((f"n{i}", -1))
        elif column.kind is Kind.TEXT:
            codes = column.data[members].astype(np.intp)
            length = int(texts[i].lengths[codes[0]])
            fields.append((f"n{i}", ">i4"))
            values.append((f"n{i}", length))
            if length:
                fields.append((f"v{i}", f"S{length}"))
                values.append((f"v{i}", texts[i].encoded[codes]))
        else:
            wire = _WIRE[column.kind]
            data = column.data[members]
            if column.kind is Kind.TIMESTAMPTZ:
                data = data - _PG_EPOCH_US
            fields += [(f"n{i}", ">i4"), (f"v{i}", wire)]
            values += [(f"n{i}", np.dtype(wire).itemsize), (f"v{i}", data)]
    out = np.empty(len(members), dtype=np.dtype(fields))
    for name, value in values:
        out[name] = value
    return out.tobytes()


def decode(data: bytes, kinds: Sequence[Kind]) -> list[NDArray[np.generic]]:
    """The columns of binary COPY output whose rows all have the fixed-size ``kinds`` and no
    NULL (coalesce them away in the query); TIMESTAMPTZ as epoch microseconds.

    ValueError when ``data`` is not such output.
    """
    if not data.startswith(HEADER[:11]) or not data.endswith(TRAILER):
        raise ValueError("not binary COPY data")
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension : len(data) - len(TRAILER)]
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"n{i}", ">i4"), (f"v{i}", _WIRE[kind])]
    layout = np.dtype(fields)
    if len(body) % layout.itemsize:
        raise ValueError("binary COPY rows are not of the expected fixed layout")
    rows = np.frombuffer(body, dtype=layout)
    if np.any(rows["count"] != len(kinds)) or any(
        np.any(rows[f"n{i}"] != np.dtype(_WIRE[k]).itemsize) for i, k in enumerate(kinds)
    ):
        raise ValueError("binary COPY rows hold NULLs or other types than expected")
    out: list[NDArray[np.generic]] = []
    for i, kind in enumerate(kinds):
        column = rows[f"v{i}"].astype(np.dtype(_WIRE[kind]).newbyteorder("="))
        out.append(column + _PG_EPOCH_US if kind is Kind.TIMESTAMPTZ else column)
    return out

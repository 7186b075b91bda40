"""Query results as polars frames, fetched by ``COPY ... TO STDOUT`` (CSV parsed by polars
in C, or fixed-width binary read by numpy): an order of magnitude cheaper than building
Python rows."""

from __future__ import annotations

import enum
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alerts.errors import AlertsError
from meterhub.db import Conn


async def fetch(conn: Conn, query: str, *args: object, schema: pl.Schema) -> pl.DataFrame:
    """The rows of ``query`` (columns in ``schema`` order) as a frame of ``schema``."""
    buffer = io.BytesIO()
    await conn.copy_from_query(query, *args, output=buffer, format="csv", header=False)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    # PostgreSQL writes booleans as t/f: read them as text, then map.
    flags = [name for name, dtype in schema.items() if dtype == pl.Boolean]
    text_schema = pl.Schema({n: pl.String if n in flags else t for n, t in schema.items()})
    frame = pl.read_csv(buffer, has_header=False, schema=text_schema)
    return frame.with_columns(pl.col(n) == "t" for n in flags) if flags else frame


# --- fixed-width binary COPY -------------------------------------------------------------
# A row whose columns are all fixed-size and never NULL has one layout in PostgreSQL's
# binary COPY format, so a whole result is one numpy structured array: no text formatting
# on the server (printing 4 M floats as text costs PostgreSQL seconds) and no Python per
# row here. Layout: a 19-byte header, per row an int16 field count and per field an int32
# length and the value in network byte order, then an int16 -1.

_HEADER = 19
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_ARRAY_HEADER = np.dtype(
    [("ndim", ">i4"), ("flags", ">i4"), ("oid", ">i4"), ("size", ">i4"), ("lbound", ">i4")]
)
_ELEMENT = np.dtype([("len", ">i4"), ("v", ">f8")])


class Fixed(enum.Enum):
    """Fixed-size column kinds the binary reader knows."""

    INT8 = "bigint"
    INT4 = "integer"
    FLOAT8 = "double precision"
    DATE = "date"  # on the wire: days since 2000-01-01


#: Each kind's wire layout (big-endian numpy dtype).
_WIRE = {Fixed.INT8: ">i8", Fixed.INT4: ">i4", Fixed.FLOAT8: ">f8", Fixed.DATE: ">i4"}


@dataclass(frozen=True, slots=True)
class FloatArray:
    """A ``double precision[]`` column of exactly ``size`` elements, none NULL; read as
    ``float32`` when ``single`` (half the memory, 7 significant digits)."""

    size: int
    single: bool = False


ColumnKind = Fixed | FloatArray


class LayoutError(AlertsError):
    """A binary COPY result does not have the fixed layout it was read with (a NULL value
    or an array of another size)."""

    code = "copy_layout"


def _row_dtype(columns: Sequence[tuple[str, ColumnKind]]) -> np.dtype[Any]:
    fields: list[tuple[str, Any] | tuple[str, Any, tuple[int, ...]]] = [("_n", ">i2")]
    for i, (name, kind) in enumerate(columns):
        fields.append((f"_len{i}", ">i4"))
        if isinstance(kind, FloatArray):
            fields.append((f"_head{i}", _ARRAY_HEADER))
            fields.append((name, _ELEMENT, (kind.size,)))
        else:
            fields.append((name, _WIRE[kind]))
    return np.dtype(fields)


def _wire_length(kind: ColumnKind) -> int:
    if isinstance(kind, FloatArray):
        return _ARRAY_HEADER.itemsize + kind.size * _ELEMENT.itemsize
    return np.dtype(_WIRE[kind]).itemsize


def decode_fixed(
    data: bytes | memoryview, columns: Sequence[tuple[str, ColumnKind]]
) -> pl.DataFrame:
    """A binary COPY result of ``columns`` as a frame; `LayoutError` if it is not that
    layout. Arrays become one column per element: ``name_0`` .. ``name_{size-1}``."""
    dtype = _row_dtype(columns)
    body = len(data) - _HEADER - 2
    if body < 0 or body % dtype.itemsize or bytes(data[-2:]) != b"\xff\xff":
        raise LayoutError(f"{len(data)} bytes are not whole rows of {dtype.itemsize} bytes")
    rows = np.frombuffer(data, dtype=dtype, count=body // dtype.itemsize, offset=_HEADER)
    if rows.size and not (rows["_n"] == len(columns)).all():
        raise LayoutError("a row has another number of columns")
    out: dict[str, Any] = {}
    for i, (name, kind) in enumerate(columns):
        if rows.size and not (rows[f"_len{i}"] == _wire_length(kind)).all():
            raise LayoutError(f"column {name!r} has a NULL or a value of another size")
        if isinstance(kind, FloatArray):
            head = rows[f"_head{i}"]
            elements = rows[name]
            if rows.size and not (
                (head["ndim"] == 1).all()
                and (head["flags"] == 0).all()
                and (head["size"] == kind.size).all()
                and (elements["len"] == 8).all()
            ):
                raise LayoutError(f"column {name!r} is not {kind.size} non-NULL floats")
            values = elements["v"].astype(np.float32 if kind.single else np.float64)
            for j in range(kind.size):
                out[f"{name}_{j}"] = values[:, j]
        elif kind is Fixed.DATE:
            days = rows[name].astype(np.int64) + _PG_EPOCH_DAYS
            out[name] = days.astype("datetime64[D]")
        else:
            out[name] = rows[name].astype(np.dtype(_WIRE[kind]).newbyteorder("="))
    return pl.DataFrame(out)


async def fetch_fixed(
    conn: Conn, query: str, *args: object, columns: Sequence[tuple[str, ColumnKind]]
) -> pl.DataFrame:
    """The rows of ``query`` read by binary COPY (see `decode_fixed`)."""
    buffer = io.BytesIO()
    await conn.copy_from_query(query, *args, output=buffer, format="binary")
    # A view of the buffer, not a copy: the rows are read in place (results can be large).
    return decode_fixed(buffer.getbuffer(), columns)

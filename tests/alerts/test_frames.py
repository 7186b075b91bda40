"""The fixed-width binary COPY reader against PostgreSQL's own output, and its refusals."""

from __future__ import annotations

import math
from datetime import date

import asyncpg
import pytest

from alerts.frames import ColumnKind, Fixed, FloatArray, LayoutError, decode_fixed, fetch_fixed

COLUMNS: list[tuple[str, ColumnKind]] = [
    ("id", Fixed.INT8),
    ("day", Fixed.DATE),
    ("x", Fixed.FLOAT8),
    ("n", Fixed.INT4),
    ("h", FloatArray(3)),
]


@pytest.mark.integration
async def test_reads_what_postgresql_writes(db: asyncpg.Connection) -> None:
    frame = await fetch_fixed(
        db,
        "SELECT g::bigint, date '1999-12-31' + g, g / 4.0::float8, -g, "
        "ARRAY[g, 'NaN', -1.5]::float8[] FROM generate_series(1, 3) g",
        columns=COLUMNS,
    )
    assert frame["id"].to_list() == [1, 2, 3]
    assert frame["day"].to_list() == [date(2000, 1, 1), date(2000, 1, 2), date(2000, 1, 3)]
    assert frame["x"].to_list() == [0.25, 0.5, 0.75]
    assert frame["n"].to_list() == [-1, -2, -3]
    assert frame["h_0"].to_list() == [1.0, 2.0, 3.0]
    assert all(math.isnan(v) for v in frame["h_1"].to_list())
    assert frame["h_2"].to_list() == [-1.5] * 3


@pytest.mark.integration
async def test_an_empty_result_is_an_empty_frame(db: asyncpg.Connection) -> None:
    frame = await fetch_fixed(
        db,
        "SELECT 1::bigint, current_date, 1::float8, 1, ARRAY[1,2,3]::float8[] WHERE false",
        columns=COLUMNS,
    )
    assert frame.height == 0 and frame.columns[:2] == ["id", "day"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "query",
    [
        "SELECT NULL::bigint, current_date, 1::float8, 1, ARRAY[1,2,3]::float8[]",
        "SELECT 1::bigint, current_date, 1::float8, 1, ARRAY[1,NULL,3]::float8[]",
        "SELECT 1::bigint, current_date, 1::float8, 1, ARRAY[1,2]::float8[]",
    ],
)
async def test_a_null_or_another_size_is_refused(db: asyncpg.Connection, query: str) -> None:
    with pytest.raises(LayoutError):
        await fetch_fixed(db, query, columns=COLUMNS)


def test_truncated_data_is_refused() -> None:
    with pytest.raises(LayoutError):
        decode_fixed(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\x00\x05\xff", COLUMNS)

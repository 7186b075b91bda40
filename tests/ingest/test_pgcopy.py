"""Binary COPY encoding: exact bytes for a hand-built row, and round trips through the
real PostgreSQL for every NULL pattern and text the writer produces."""

from __future__ import annotations

import math
import random

import asyncpg
import numpy as np
import pytest

from ingest import pgcopy
from ingest.interval_grid import from_micros, to_micros
from meterhub.reading import LOCAL_TZ

Kind = pgcopy.Kind


def test_one_row_byte_for_byte() -> None:
    columns = [
        pgcopy.Column(Kind.BIGINT, np.array([7])),
        pgcopy.Column(Kind.DOUBLE, np.array([1.5]), nulls=np.array([True])),
        pgcopy.Column(Kind.SMALLINT, np.array([3])),
        pgcopy.Column(Kind.TEXT, np.array([0]), texts=["电"]),
    ]
    row = (
        (4).to_bytes(2, "big")
        + (8).to_bytes(4, "big")
        + (7).to_bytes(8, "big")
        + (-1).to_bytes(4, "big", signed=True)  # NULL: no value follows
        + (2).to_bytes(4, "big")
        + (3).to_bytes(2, "big")
        + (3).to_bytes(4, "big")
        + "电".encode()
    )
    assert pgcopy.encode(columns) == pgcopy.HEADER + row + pgcopy.TRAILER


def test_no_rows_is_header_and_trailer() -> None:
    column = pgcopy.Column(Kind.BIGINT, np.zeros(0, dtype=np.int64))
    assert pgcopy.encode([column]) == pgcopy.HEADER + pgcopy.TRAILER


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        pgcopy.encode(
            [
                pgcopy.Column(Kind.BIGINT, np.zeros(2, dtype=np.int64)),
                pgcopy.Column(Kind.BIGINT, np.zeros(3, dtype=np.int64)),
            ]
        )


async def test_round_trip_through_postgres(db: asyncpg.Connection) -> None:
    rng = random.Random(5)
    n = 500
    ids = np.array([rng.randrange(-(2**40), 2**40) for _ in range(n)], dtype=np.int64)
    stamps = np.array(
        [rng.randrange(-(10**15), 10**15) for _ in range(n)], dtype=np.int64
    )  # about ±31 years around 2000
    doubles = np.array([rng.uniform(-1e9, 1e9) for _ in range(n)])
    doubles[::7] = -0.0
    doubles[::11] = math.inf
    double_nulls = np.array([rng.random() < 0.3 for _ in range(n)])
    small = np.array([rng.randrange(-32768, 32768) for _ in range(n)], dtype=np.int64)
    texts = ["bench", "", "mqtt:网关-7", "x" * 300]
    codes = np.array([rng.randrange(len(texts)) for _ in range(n)], dtype=np.int64)
    ints = np.array([rng.randrange(-(2**31), 2**31) for _ in range(n)], dtype=np.int64)
    int_nulls = np.array([rng.random() < 0.5 for _ in range(n)])
    columns = [
        pgcopy.Column(Kind.BIGINT, ids),
        pgcopy.Column(Kind.TIMESTAMPTZ, stamps),
        pgcopy.Column(Kind.DOUBLE, doubles, nulls=double_nulls),
        pgcopy.Column(Kind.SMALLINT, small),
        pgcopy.Column(Kind.TEXT, codes, texts=texts),
        pgcopy.Column(Kind.INTEGER, ints, nulls=int_nulls),
    ]
    await db.execute(
        "CREATE TEMP TABLE copy_trip (id bigint, ts timestamptz, x double precision, "
        "s smallint, t text, i integer)"
    )
    data = memoryview(pgcopy.encode(columns))
    await db.copy_to_table("copy_trip", source=data, format="binary")  # type: ignore[arg-type]
    rows = {r["id"]: r for r in await db.fetch("SELECT * FROM copy_trip")}
    assert len(rows) == n
    for i in range(n):
        row = rows[int(ids[i])]
        assert to_micros(row["ts"]) == stamps[i]
        assert row["x"] is None if double_nulls[i] else row["x"] == doubles[i]
        assert row["s"] == small[i]
        assert row["t"] == texts[codes[i]]
        assert row["i"] is None if int_nulls[i] else row["i"] == ints[i]


async def test_many_distinct_texts_round_trip_in_few_layouts(db: asyncpg.Connection) -> None:
    """A collector's batch: a source per link, most of one length. Rows with different
    texts of the same byte length share a layout (one group, not one per text)."""
    rng = random.Random(9)
    texts = [f"modbus:tcp://127.0.0.1:{port}" for port in range(9_990, 10_400)] + ["", "电表"]
    n = 2_000
    codes = np.array([rng.randrange(len(texts)) for _ in range(n)], dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    values = np.array([rng.uniform(0, 1e6) for _ in range(n)])
    nulls = np.array([rng.random() < 0.2 for _ in range(n)])
    columns = [
        pgcopy.Column(Kind.BIGINT, ids),
        pgcopy.Column(Kind.TEXT, codes, texts=texts),
        pgcopy.Column(Kind.DOUBLE, values, nulls=nulls),
    ]
    layouts = {(len(texts[c].encode()), bool(z)) for c, z in zip(codes, nulls, strict=True)}
    groups = pgcopy._groups(columns, {1: pgcopy._Texts.of(texts)}, n)
    assert len(groups) == len(layouts) <= 8  # 4 text lengths x (NULL or not)
    await db.execute("CREATE TEMP TABLE copy_texts (id bigint, t text, x double precision)")
    data = memoryview(pgcopy.encode(columns))
    await db.copy_to_table("copy_texts", source=data, format="binary")  # type: ignore[arg-type]
    rows = await db.fetch("SELECT * FROM copy_texts ORDER BY id")
    assert [r["t"] for r in rows] == [texts[c] for c in codes]
    assert [r["x"] for r in rows] == [None if z else v for z, v in zip(nulls, values, strict=True)]


def test_micros_round_trip() -> None:
    for us in (0, 1, -1, 820_454_400_000_000, 10**15):
        ts = from_micros(us)
        assert ts.tzinfo is LOCAL_TZ
        assert to_micros(ts) == us


def test_decode_reads_back_fixed_rows() -> None:
    kinds = (pgcopy.Kind.BIGINT, pgcopy.Kind.TIMESTAMPTZ, pgcopy.Kind.DOUBLE)
    ids = np.array([7, -3, 2**40], dtype=np.int64)
    stamps = np.array([0, 1_700_000_000_123_456, -5], dtype=np.int64)
    values = np.array([1.5, np.nan, -0.25])
    data = pgcopy.encode(
        [pgcopy.Column(k, d) for k, d in zip(kinds, (ids, stamps, values), strict=True)]
    )
    got_ids, got_stamps, got_values = pgcopy.decode(data, kinds)
    assert got_ids.tolist() == ids.tolist()
    assert got_stamps.tolist() == stamps.tolist()
    assert np.array_equal(got_values, values, equal_nan=True)
    with pytest.raises(ValueError, match=r"fixed layout|NULL"):
        nulls = np.array([False, True, False])
        pgcopy.decode(pgcopy.encode([pgcopy.Column(kinds[2], values, nulls)]), kinds[2:])
    with pytest.raises(ValueError, match="not binary COPY"):
        pgcopy.decode(b"PGCOPY", kinds)

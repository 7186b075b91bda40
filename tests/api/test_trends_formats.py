"""Table responses: negotiation, JSON timestamps, CSV with BOM, XLSX (no database)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import orjson
import polars as pl
import pytest

from api.formats import Format, Table, negotiate, render

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def table() -> Table:
    frame = pl.DataFrame(
        {
            "bucket": pl.Series(
                [datetime(2026, 3, 1, 16, tzinfo=UTC), datetime(2026, 3, 1, 17, 30, tzinfo=UTC)],
                dtype=pl.Datetime("us", "UTC"),
            ),
            "town": ["苏溪", "佛堂"],
            "energy": [12.5, 3.0],
            "ratio": [None, 0.25],
        },
        schema_overrides={"ratio": pl.Float64},
    )
    return Table(
        frame, filename="趋势-test", labels={"bucket": "时间", "town": "镇街", "energy": "用量"}
    )


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        (None, None, Format.JSON),
        (None, "*/*", Format.JSON),
        (None, "text/csv", Format.CSV),
        (None, f"{XLSX}", Format.XLSX),
        (None, "text/csv;q=0.5, application/json", Format.JSON),
        (None, f"application/json;q=0.2, {XLSX};q=0.9", Format.XLSX),
        (Format.CSV, "application/json", Format.CSV),
        (None, "text/csv;q=oops", Format.JSON),
    ],
)
def test_negotiate(requested: Format | None, accept: str | None, expected: Format) -> None:
    assert negotiate(requested, accept) is expected


def test_json_has_local_timestamps_and_meta(table: Table) -> None:
    response = render(table, Format.JSON, meta={"total": 1}, headers={"X-Total-Count": "1"})
    assert response.media_type == "application/json"
    assert response.headers["x-total-count"] == "1"
    assert orjson.loads(response.body) == {
        "total": 1,
        "items": [
            {"bucket": "2026-03-02T00:00:00+08:00", "town": "苏溪", "energy": 12.5, "ratio": None},
            {"bucket": "2026-03-02T01:30:00+08:00", "town": "佛堂", "energy": 3.0, "ratio": 0.25},
        ],
    }


def test_csv_has_a_bom_and_chinese_intact(table: Table) -> None:
    response = render(table, Format.CSV, meta={"ignored": True}, chinese=True)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="__-test.csv"')
    assert "filename*=UTF-8''%E8%B6%8B%E5%8A%BF-test.csv" in disposition
    body = bytes(response.body)
    assert body.startswith(b"\xef\xbb\xbf")
    assert body[3:].decode("utf-8").splitlines() == [
        "时间,镇街,用量,ratio",
        "2026-03-02T00:00:00+08:00,苏溪,12.5,",
        "2026-03-02T01:30:00+08:00,佛堂,3.0,0.25",
    ]
    english = bytes(render(table, Format.CSV).body).decode("utf-8-sig")
    assert english.splitlines()[0] == "bucket,town,energy,ratio"


def test_xlsx_reads_back(table: Table) -> None:
    response = render(table, Format.XLSX, chinese=True)
    assert response.media_type == XLSX
    body = bytes(response.body)
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    sheet = pl.read_excel(body)
    assert sheet.columns == ["时间", "镇街", "用量", "ratio"]
    # Excel has no time zones: Shanghai wall-clock time.
    assert sheet["时间"].to_list() == [datetime(2026, 3, 2, 0, 0), datetime(2026, 3, 2, 1, 30)]
    assert sheet.row(1)[1:] == ("佛堂", 3.0, 0.25)
    assert sheet["ratio"].to_list() == [None, 0.25]

"""The bureau's spreadsheets (CSV or XLSX) as rows of text, with Chinese headers mapped.

Column mappings are documented in docs/import.md; a header that is neither a field name
nor a known alias is an error, so a typo never silently drops a column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from registry.errors import SheetError

FIRM_COLUMNS: Mapping[str, str] = {
    "统一社会信用代码": "credit_code",
    "信用代码": "credit_code",
    "企业名称": "name",
    "名称": "name",
    "行业代码": "industry",
    "国民经济行业代码": "industry",
    "镇街": "town",
    "属地镇街": "town",
    "所属镇街": "town",
    "用地面积(亩)": "land_mu",
    "用地面积": "land_mu",
    "亩数": "land_mu",
    "规上企业": "above_scale",
    "是否规上": "above_scale",
    "标签": "tags",
}
METER_COLUMNS: Mapping[str, str] = {
    "统一社会信用代码": "credit_code",
    "表号": "code",
    "电表编号": "code",
    "类型": "utility",
    "表计类型": "utility",
    "协议": "protocol",
    "通讯协议": "protocol",
    "型号": "model",
    "CT变比": "ct_ratio",
    "PT变比": "pt_ratio",
    "额定功率": "max_power",
    "安装时间": "installed_at",
    "主机": "host",
    "端口": "port",
    "从站地址": "unit_id",
    "表地址": "address",
    "总线": "bus",
    "网关": "gateway_id",
    "通道": "channel",
    "数据来源": "feed",
}
OUTPUT_COLUMNS: Mapping[str, str] = {
    "统一社会信用代码": "credit_code",
    "月份": "month",
    "工业总产值": "output_value",
    "工业增加值": "value_added",
    "税收": "tax_paid",
    "实缴税金": "tax_paid",
    "从业人员": "employees",
    "从业人员数": "employees",
    "研发费用": "rnd_spend",
    "R&D经费": "rnd_spend",
    "主营业务收入": "main_revenue",
    "排放量": "emissions_t",
    "污染物排放量": "emissions_t",
}

XLSX_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


@dataclass(frozen=True, slots=True)
class Sheet:
    """Rows keyed by field name; ``row_numbers[i]`` is the spreadsheet row of ``rows[i]``
    (the header is row 1)."""

    rows: list[dict[str, str]]
    row_numbers: list[int]


def _map_header(header: list[str], aliases: Mapping[str, str], fields: set[str]) -> list[str]:
    names = []
    for raw in header:
        name = raw.strip()
        mapped = aliases.get(name, name)
        if mapped not in fields:
            raise SheetError(f"unknown column {raw!r}; known: {', '.join(sorted(fields))}")
        names.append(mapped)
    return names


def _csv_cells(body: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SheetError("CSV must be UTF-8 or GB18030 text")
    try:  # newline="": a CR inside a cell is the cell's, as the csv module wants it
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise SheetError(f"the CSV cannot be read: {exc}") from exc


def _xlsx_cells(body: bytes) -> list[list[str]]:
    try:
        frame = pl.read_excel(io.BytesIO(body), has_header=False, infer_schema_length=0)
    except Exception as exc:  # the engine raises its own types for a corrupt workbook
        raise SheetError(f"cannot read the workbook: {exc}") from exc
    return [["" if v is None else str(v) for v in row] for row in frame.iter_rows()]


def read_sheet(
    body: bytes, media_type: str, *, aliases: Mapping[str, str], fields: set[str]
) -> Sheet:
    """Parse a CSV or XLSX upload; blank rows are skipped, cells are stripped text."""
    cells = _xlsx_cells(body) if media_type in XLSX_TYPES else _csv_cells(body)
    if not cells:
        raise SheetError("the sheet is empty")
    names = _map_header(cells[0], aliases, fields)
    rows, numbers = [], []
    for number, row in enumerate(cells[1:], start=2):
        values = {n: v.strip() for n, v in zip(names, row, strict=False) if v.strip()}
        if values:
            rows.append(values)
            numbers.append(number)
    return Sheet(rows, numbers)

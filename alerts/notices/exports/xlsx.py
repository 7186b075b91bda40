"""The notice as a workbook: a summary sheet (the header and one row per town) and one
sheet per town with its items. Chinese headers; numbers are numbers (shares with a percent
format), dates are text ``YYYY-MM-DD``, colours are words (with a matching fill). The
workbook's creation time is the notice's data cut-off, so the same document gives the
same bytes."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xlsxwriter

from alerts.notices.exports.html import SCALE_ZH, moment
from alerts.notices.exports.scope import town_part

SUMMARY_SHEET = "汇总"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_RESERVED_SHEETS = {"history"}
FILLS = {"red": "#F8CBCB", "yellow": "#FFF2B3", "blue": "#CFE0F7", "green": "#D5EFD7"}


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: float
    value: Callable[[dict[str, Any]], Any]
    kind: str = "text"  # text | int | num1 | num2 | num3 | pct | wrap


def _fig(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda i: i["figures"][name]


def _feedback(key: str) -> Callable[[dict[str, Any]], Any]:
    def value(i: dict[str, Any]) -> Any:
        fb = i["latest_feedback"]
        if fb is None:
            return None
        return moment(fb["at"]) if key == "at" else fb[key]

    return value


ITEM_COLUMNS = (
    Column("序号", 6, lambda i: i["_position"], "int"),
    Column("企业名称", 28, lambda i: i["firm"]),
    Column("统一社会信用代码", 22, lambda i: i["credit_code"]),
    Column("镇街", 8, lambda i: i["town"]),
    Column("行业代码", 9, lambda i: i["industry"]),
    Column("规模", 6, lambda i: SCALE_ZH[i["above_scale"]]),
    Column("用地面积（亩）", 10, lambda i: i["land_mu"], "num2"),
    Column("亩均评价类别", 8, lambda i: i["evaluation_class"]),
    Column("连续D类年数", 8, lambda i: i["years_in_d"], "int"),
    Column("碳效等级", 8, lambda i: i["carbon_grade"]),
    Column("问题类型", 16, lambda i: i["problem_zh"]),
    Column("问题依据", 40, lambda i: "\n".join(r["text"] for r in i["reasons"]), "wrap"),
    Column("本周用电量（kWh）", 14, _fig("week_kwh"), "num1"),
    Column("周环比", 9, _fig("week_on_week"), "pct"),
    Column("同比", 9, _fig("year_on_year"), "pct"),
    Column("单位产值电耗（kWh/万元）", 14, _fig("kwh_per_10k_output"), "num2"),
    Column("行业中位数（kWh/万元）", 14, _fig("industry_median"), "num2"),
    Column("基线偏差", 9, _fig("baseline_deviation"), "pct"),
    Column("本周能耗（tce）", 12, _fig("week_tce"), "num3"),
    Column("整改要求", 36, lambda i: i["action"], "wrap"),
    Column("整改期限", 12, lambda i: i["deadline"]),
    Column("责任单位", 20, lambda i: i["responsible_unit"]),
    Column("状态", 10, lambda i: i["status_zh"]),
    Column("预警颜色", 8, lambda i: i["colour_zh"]),
    Column("首次通报日期", 12, lambda i: i["first_notice"]),
    Column("连续通报周数", 10, lambda i: i["weeks_running"], "int"),
    Column("回头看", 8, lambda i: "是" if i["reopened"] else "否"),
    Column("最新反馈时间", 17, _feedback("at")),
    Column("最新反馈", 30, _feedback("note"), "wrap"),
)
_COLOUR_COLUMN = next(n for n, c in enumerate(ITEM_COLUMNS) if c.title == "预警颜色")

SUMMARY_COLUMNS = (
    ("镇街", "full_name", "text"),
    ("责任单位", "notice_unit", "text"),
    ("新增", "new", "int"),
    ("持续", "continuing", "int"),
    ("逾期", "overdue", "int"),
    ("本周销号", "closed_this_week", "int"),
    ("累计销号", "closed_total", "int"),
    ("完成率", "completion_rate", "pct"),
)


def sheet_name(name: str, taken: set[str]) -> str:
    """``name`` as a sheet name Excel accepts: no ``[]:*?/\\``, at most 31 characters, not
    blank, not reserved, unlike every name in ``taken`` (compared as Excel does, ignoring
    case). Adds it to ``taken``."""
    base = _BAD_SHEET_CHARS.sub("_", name).strip("'").strip() or "Sheet"
    if base.lower() in _RESERVED_SHEETS:
        base = f"{base}_"
    candidate, n = base[:31], 1
    while candidate.lower() in taken:
        n += 1
        suffix = f"({n})"
        candidate = base[: 31 - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


class _Writer:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        wrap = {"text_wrap": True, "valign": "top"}
        self.formats: dict[str, Any] = {
            "head": book.add_format({"bold": True, "bg_color": "#E7E6E6", "border": 1, **wrap}),
            "title": book.add_format({"bold": True, "font_size": 14}),
            "bold": book.add_format({"bold": True}),
            "text": book.add_format({"valign": "top"}),
            "wrap": book.add_format(wrap),
            "int": book.add_format({"num_format": "0", "valign": "top"}),
            "num1": book.add_format({"num_format": "#,##0.0", "valign": "top"}),
            "num2": book.add_format({"num_format": "#,##0.00", "valign": "top"}),
            "num3": book.add_format({"num_format": "#,##0.000", "valign": "top"}),
            "pct": book.add_format({"num_format": "0.0%", "valign": "top"}),
        }
        for colour, fill in FILLS.items():
            self.formats[colour] = book.add_format({"bg_color": fill, "valign": "top"})

    def cell(self, sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
        fmt = self.formats[kind]
        if value is None or value == "":
            sheet.write_blank(row, col, None, fmt)
        elif kind in ("text", "wrap") or isinstance(value, str):
            sheet.write_string(row, col, str(value), fmt)
        else:
            sheet.write_number(row, col, value, fmt)


def _summary_sheet(w: _Writer, sheet: Any, doc: dict[str, Any]) -> None:
    h = doc["header"]
    sheet.write_string(0, 0, h["title"], w.formats["title"])
    facts = (
        ("通报编号", h["number"]),
        ("发文单位", h["issuing_unit"]),
        ("通报周次", h["iso_week"]),
        ("统计期", f"{h['period']['start']} 至 {h['period']['end']}"),
        ("数据截止", moment(h["data_cutoff"])),
    )
    for row, (label, value) in enumerate(facts, start=1):
        sheet.write_string(row, 0, label, w.formats["bold"])
        sheet.write_string(row, 1, value, w.formats["text"])
    row = len(facts) + 1
    sheet.write_string(row, 0, "数据完整率", w.formats["bold"])
    w.cell(sheet, row, 1, h["completeness"], "pct")
    top = row + 2
    for col, (title, _, _) in enumerate(SUMMARY_COLUMNS):
        sheet.write_string(top, col, title, w.formats["head"])
    rows = [{**t["summary"], **t} for t in doc["towns"]]
    if len(doc["towns"]) > 1:
        rows.append({**doc["summary"], "full_name": "全市合计", "notice_unit": h["issuing_unit"]})
    for r, town in enumerate(rows, start=top + 1):
        for col, (_, key, kind) in enumerate(SUMMARY_COLUMNS):
            w.cell(sheet, r, col, town[key], kind)
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 24)
    sheet.set_column(2, len(SUMMARY_COLUMNS) - 1, 10)


def _town_sheet(w: _Writer, sheet: Any, town: dict[str, Any]) -> None:
    for col, column in enumerate(ITEM_COLUMNS):
        sheet.write_string(0, col, column.title, w.formats["head"])
        sheet.set_column(col, col, column.width)
    sheet.freeze_panes(1, 2)
    if not town["items"]:
        sheet.write_string(1, 1, "本周无通报事项", w.formats["text"])
        return
    for row, item in enumerate(town["items"], start=1):
        item = {**item, "_position": row}
        for col, column in enumerate(ITEM_COLUMNS):
            kind = item["colour"] if col == _COLOUR_COLUMN and item["colour"] in FILLS else None
            w.cell(sheet, row, col, column.value(item), kind or column.kind)
    sheet.autofilter(0, 0, len(town["items"]), len(ITEM_COLUMNS) - 1)


def render_xlsx(document: dict[str, Any], town: str | None = None) -> bytes:
    """The notice (or ``town``'s part of it) as an .xlsx workbook."""
    doc = town_part(document, town)
    h = doc["header"]
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    cutoff = datetime.fromisoformat(h["data_cutoff"]).astimezone(UTC).replace(tzinfo=None)
    book.set_properties(
        {"title": f"{h['number']} {h['title']}", "author": h["issuing_unit"], "created": cutoff}
    )
    w = _Writer(book)
    taken: set[str] = set()
    _summary_sheet(w, book.add_worksheet(sheet_name(SUMMARY_SHEET, taken)), doc)
    for part in doc["towns"]:
        _town_sheet(w, book.add_worksheet(sheet_name(part["town"], taken)), part)
    book.close()
    return buffer.getvalue()

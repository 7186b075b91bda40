"""The notice's exports from a document: printable HTML, XLSX and JSON, whole or one town's
part, and their file names. Pure: no database (test_notice_exports_db renders a generated
notice)."""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import polars as pl
import pytest

from alerts.notices.exports import (
    Kind,
    UnknownTownError,
    content_disposition,
    file_name,
    render,
    render_html,
    render_json,
    render_xlsx,
)
from alerts.notices.exports.sparkline import sparkline
from alerts.notices.exports.xlsx import ITEM_COLUMNS, SUMMARY_SHEET, sheet_name
from alerts.notices.generate import canonical

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
SVG_EMPTY = {"polyline", "circle", "rect", "path", "line"}


def _item(case_id: int, town: str, firm: str, **over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "case_id": case_id,
        "firm_id": 100 + case_id,
        "firm": firm,
        "credit_code": f"91330782MA2{case_id:07d}",
        "town": town,
        "industry": "C1713",
        "above_scale": True,
        "land_mu": 12.5,
        "evaluation_class": "D",
        "years_in_d": 2,
        "carbon_grade": "4级",
        "problem": "two_high",
        "problem_zh": "两高项目",
        "reasons": [
            {"rule": "two_high", "text": f"{firm}属两高行业，本周用电同比上升", "evidence": {}}
        ],
        "figures": {
            "week_kwh": 12345.6,
            "week_on_week": 0.125,
            "year_on_year": -0.034,
            "kwh_per_10k_output": 812.35,
            "industry_median": 400.0,
            "baseline_deviation": 0.2,
            "week_tce": 1.517,
            "trend_kwh": [900.0, 950.0, None, 1000.0, 1200.0, 1100.0, 1300.0, 12345.6],
        },
        "action": "开展两高项目复核评价，落实能耗双控要求",
        "deadline": "2026-12-27",
        "responsible_unit": f"{town}街道办事处",
        "status": "issued",
        "status_zh": "已通报",
        "colour": "none",
        "colour_zh": "正常",
        "first_notice": "2026-11-23",
        "weeks_running": 1,
        "reopened": 0,
        "latest_feedback": None,
    }
    item.update(over)
    return item


def _summary(n: int) -> dict[str, Any]:
    return {
        "new": n,
        "continuing": 0,
        "overdue": 0,
        "closed_this_week": 0,
        "closed_total": 1,
        "completion_rate": 0.25 if n else None,
    }


def sample() -> dict[str, Any]:
    red = _item(
        2,
        "江东",
        "<金&华>五金厂",  # markup in a name must come out as text
        colour="red",
        colour_zh="红色",
        status="escalated",
        status_zh="已升级督办",
        weeks_running=5,
        reopened=1,
        latest_feedback={"at": "2026-11-25T09:30:00+08:00", "note": "更换空压机，待验收"},
    )
    red["figures"] = {**red["figures"], "trend_kwh": [None, 5.0, None, None, 7.0, 8.0, 9.0, None]}
    lone = _item(3, "后宅", "后宅织造有限公司", problem_zh="疑似停产减产")
    lone["figures"] = {**lone["figures"], "trend_kwh": [None] * 7 + [0.0], "week_on_week": None}
    towns = [
        ("稠城", []),
        ("江东", [red, _item(1, "江东", "义乌市江东针织有限公司")]),
        ("后宅", [lone]),
    ]
    return {
        "header": {
            "number": "义经信高耗〔2026〕第48期",
            "title": "高耗低效企业整治工作每周通报",
            "issuing_unit": "义乌市经济和信息化局",
            "iso_week": "2026-W48",
            "period": {"start": "2026-11-23", "end": "2026-11-29"},
            "data_cutoff": "2026-11-30T00:00:00+08:00",
            "completeness": 0.9731,
        },
        "summary": _summary(3),
        "towns": [
            {
                "town": name,
                "full_name": f"{name}街道",
                "notice_unit": f"{name}街道办事处",
                "summary": _summary(len(items)),
                "items": items,
            }
            for name, items in towns
        ],
    }


class _Checker(HTMLParser):
    """Balanced tags (void elements excepted) and every tag seen, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID | SVG_EMPTY:
            self.errors.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: bytes) -> _Checker:
    checker = _Checker()
    checker.feed(html.decode("utf-8"))
    checker.close()
    assert checker.errors == [] and checker.stack == []
    return checker


def _items(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for t in document["towns"] for i in t["items"]]


def test_html_carries_every_item_one_town_per_page() -> None:
    document = sample()
    html = render_html(document)
    page = parse(html)
    text = "".join(page.text)
    assert html.startswith(b"<!DOCTYPE html>") and b'<html lang="zh-CN">' in html
    assert "@page { size: A4;" in text and "break-before: page" in text
    for item in _items(document):
        assert item["firm"] in text and item["problem_zh"] in text
        assert all(r["text"] in text for r in item["reasons"])
        assert item["credit_code"] in text and f"连续通报第{item['weeks_running']}周" in text
    assert "&lt;金&amp;华&gt;五金厂".encode() in html  # escaped, never markup
    sections = [a for t, a in page.tags if t == "section"]
    assert [a["class"] for a in sections] == ["town"] * len(document["towns"])
    assert text.count("本周无通报事项") == 1  # 稠城 has no item
    for header in ("义经信高耗〔2026〕第48期", "义乌市经济和信息化局", "2026-W48", "97.3%"):
        assert header in text
    assert "2026-11-30 00:00" in text and "回头看" in text and "更换空压机，待验收" in text
    # The colour is also said in words, with the status.
    assert "▲ 红色" in text and "已升级督办" in text and "○ 正常" in text


def test_html_has_an_inline_trend_per_item_and_nothing_external() -> None:
    document = sample()
    html = render_html(document)
    page = parse(html)
    assert sum(1 for t, _ in page.tags if t == "svg") == len(_items(document))
    polylines = [a["points"] or "" for t, a in page.tags if t == "polyline"]
    # 900,950 | 1000..12345.6 ; 5 alone, then 7,8,9 (the red one) ; 0.0 alone (后宅).
    assert [len(p.split()) for p in polylines] == [3, 2, 5]
    # Dots: the red one's lone week (its latest is missing), 后宅's lone week, the first
    # one's latest week.
    assert sum(1 for t, _ in page.tags if t == "circle") == 3
    assert not re.search(rb"https?://|<script|<link|@import|url\(", html)


def test_sparkline_breaks_at_missing_weeks() -> None:
    line = sparkline([1.0, 2.0, None, 3.0, None, 4.0, 5.0, 6.0])
    assert [len(p.split()) for p in line.lines] == [2, 3]
    assert len(line.dots) == 2 and line.missing == 2  # week 4 alone, and the latest week
    flat = sparkline([7.0, 7.0])
    assert flat.lines == ("3.0,14.0 117.0,14.0",)
    assert sparkline([None, None]).empty


def test_renders_are_byte_identical() -> None:
    for kind in Kind:
        first = render(kind, sample())
        assert render(kind, copy.deepcopy(sample())) == first
        assert render(kind, sample(), "江东") == render(kind, sample(), "江东")
    other = sample()
    other["towns"][1]["items"][1]["firm"] = "另一家公司"
    assert render_xlsx(other) != render_xlsx(sample())


def test_json_is_the_canonical_text() -> None:
    document = sample()
    assert render_json(document) == canonical(document).encode()
    part = json.loads(render_json(document, "后宅"))
    assert [t["town"] for t in part["towns"]] == ["后宅"]
    assert part["summary"] == document["towns"][2]["summary"]


def read_sheets(data: bytes) -> dict[str, pl.DataFrame]:
    sheets = pl.read_excel(io.BytesIO(data), sheet_id=0, raise_if_empty=False)
    assert isinstance(sheets, dict)
    return sheets


def test_xlsx_reads_back_with_chinese_and_numbers() -> None:
    document = sample()
    data = render_xlsx(document)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    sheets = read_sheets(data)
    assert list(sheets) == [SUMMARY_SHEET, "稠城", "江东", "后宅"]
    summary = pl.read_excel(io.BytesIO(data), sheet_name=SUMMARY_SHEET, has_header=False)
    cells = {str(v) for row in summary.iter_rows() for v in row if v is not None}
    assert {"义经信高耗〔2026〕第48期", "江东街道", "全市合计", "2026-W48"} <= cells
    jiangdong = sheets["江东"]
    assert jiangdong.columns == [c.title for c in ITEM_COLUMNS]
    assert jiangdong["企业名称"].to_list() == [i["firm"] for i in document["towns"][1]["items"]]
    assert jiangdong["统一社会信用代码"][0] == "91330782MA20000002"
    assert jiangdong["本周用电量（kWh）"].dtype == pl.Float64
    assert jiangdong["本周用电量（kWh）"].to_list() == [12345.6, 12345.6]
    assert jiangdong["周环比"].to_list() == [0.125, 0.125]  # a share, shown as a percent
    assert jiangdong["连续通报周数"].to_list() == [5, 1]
    assert jiangdong["预警颜色"].to_list() == ["红色", "正常"]
    assert jiangdong["整改期限"].to_list() == ["2026-12-27", "2026-12-27"]
    assert jiangdong["回头看"].to_list() == ["是", "否"]
    assert jiangdong["问题依据"][0] == document["towns"][1]["items"][0]["reasons"][0]["text"]
    assert sheets["后宅"]["周环比"].to_list() == [None]
    assert sheets["稠城"]["企业名称"].to_list() == ["本周无通报事项"]


@pytest.mark.parametrize("kind", list(Kind))
def test_a_town_export_holds_no_other_town(kind: Kind) -> None:
    document = sample()
    data = render(kind, document, "后宅")
    own = document["towns"][2]["items"][0]["firm"]
    others = [i["firm"] for t in document["towns"] if t["town"] != "后宅" for i in t["items"]]
    if kind is Kind.XLSX:
        sheets = read_sheets(data)
        assert list(sheets) == [SUMMARY_SHEET, "后宅"]
        text = json.dumps({n: s.rows() for n, s in sheets.items()}, ensure_ascii=False, default=str)
    else:
        text = data.decode()
    assert own in text and not any(o in text for o in others)
    assert not any(o.replace("<", "&lt;").replace("&", "&amp;") in text for o in others)
    assert "江东" not in text and "稠城" not in text
    with pytest.raises(UnknownTownError):
        render(kind, document, "../江东")


def test_sheet_names_are_valid_for_excel() -> None:
    taken: set[str] = set()
    names = [sheet_name(n, taken) for n in ("a[b]:c*d?e/f\\g", "x" * 40, "X" * 40, "History")]
    assert names[0] == "a_b__c_d_e_f_g" and len(names[1]) == 31
    assert names[2] == "X" * 28 + "(2)" and names[3] == "History_"
    assert all(len(n) <= 31 and not re.search(r"[\[\]:*?/\\]", n) for n in names)


def test_file_names_are_ascii_and_the_chinese_one_is_filename_star() -> None:
    document = sample()
    assert file_name(Kind.HTML, document, revision=2) == "notice_2026-W48_r2.html"
    assert file_name(Kind.XLSX, document, revision=2, town="后宅") == "notice_2026-W48_r2_t03.xlsx"
    value = content_disposition(Kind.XLSX, document, revision=2, town="后宅")
    assert value.isascii()
    match = re.fullmatch(
        r'attachment; filename="([A-Za-z0-9_.-]+)"; filename\*=UTF-8\'\'(\S+)', value
    )
    assert match and match[1] == "notice_2026-W48_r2_t03.xlsx"
    assert unquote(match[2]) == "义经信高耗〔2026〕第48期_第2版_后宅街道.xlsx"
    hostile = sample()
    hostile["header"]["iso_week"] = '../..\\"; x=1'
    hostile["header"]["number"] = '../a/b\\c:"d"*?<>|;\n'
    value = content_disposition(Kind.JSON, hostile, revision=1)
    name = re.fullmatch(r'attachment; filename="([^"]+)"; filename\*=UTF-8\'\'(\S+)', value)
    assert name and ".." not in name[1] and "/" not in name[1]
    assert not re.search(r'[/\\:*?"<>|;\x00-\x1f]', unquote(name[2]))
    assert not unquote(name[2]).startswith(".")
    with pytest.raises(UnknownTownError):
        content_disposition(Kind.HTML, document, revision=1, town="不存在")

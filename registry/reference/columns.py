"""Sheet headers of each reference import: Chinese header -> field (docs/import.md). A field
name is accepted as its own header too."""

from __future__ import annotations

from collections.abc import Mapping

_CREDIT_CODE = {"统一社会信用代码": "credit_code", "信用代码": "credit_code"}
_SOURCE = {"来源": "source", "依据": "source", "数据来源": "source"}
_YEAR = {"年份": "year", "年度": "year"}

HOLIDAY_COLUMNS: Mapping[str, str] = {
    "日期": "day",
    "类型": "kind",
    "名称": "name",
    "节日": "name",
    **_SOURCE,
}
GRID_FACTOR_COLUMNS: Mapping[str, str] = {
    **_YEAR,
    "区域": "region",
    "地区": "region",
    "电网": "region",
    "类型": "kind",
    "因子类型": "kind",
    "排放因子": "tco2_per_mwh",
    "因子": "tco2_per_mwh",
    "单位": "unit",
    **_SOURCE,
}
BENCHMARK_COLUMNS: Mapping[str, str] = {
    "行业代码": "industry",
    "行业": "industry",
    **_YEAR,
    "指标": "indicator",
    "值": "value",
    "数值": "value",
    "标杆值": "value",
    "单位": "unit",
    **_SOURCE,
}
SCHEME_COLUMNS: Mapping[str, str] = {
    "方案": "scheme",
    "方案编号": "scheme",
    "方案名称": "scheme_name",
    **_YEAR,
    "计分方法": "method",
    "分类方法": "classing",
    "分档": "cuts",
    **_SOURCE,
    "企业类别": "cohort",
    "组别": "cohort",
    "指标": "indicator",
    "权重": "weight",
    "基准值": "benchmark",
    "标杆值": "benchmark",
    "单位": "unit",
    "上限": "cap",
}
#: Fields of a scheme sheet given once per scheme (on its first row, or the same on each).
SCHEME_FIELDS = ("scheme_name", "year", "method", "classing", "cuts", "source")
LIST_COLUMNS: Mapping[str, str] = {
    **_CREDIT_CODE,
    "名单": "list",
    "名单类型": "list",
    "列入日期": "since",
    "起始日期": "since",
    "移出日期": "until",
    "截止日期": "until",
    **_SOURCE,
    "备注": "note",
}
PROJECT_COLUMNS: Mapping[str, str] = {
    **_CREDIT_CODE,
    "项目名称": "name",
    "投产年份": "commissioned_year",
    "建成年份": "commissioned_year",
    "设计能耗": "design_tce",
    "设计能耗(吨标准煤)": "design_tce",
    **_SOURCE,
}

"""Per-mu evaluations and carbon grades as the bureau and towns read them: one year's
firms filtered by town, industry, cohort, class or grade, and one firm's history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from alerts.evaluation import INDICATORS
from alerts.frames import fetch
from meterhub.db import Conn


@dataclass(frozen=True, slots=True)
class Filters:
    year: int
    town: str | None = None
    industry: str | None = None  # GB/T 4754 code prefix


_FIRM = {
    "firm_id": pl.Int64,
    "firm": pl.String,
    "credit_code": pl.String,
    "town": pl.String,
    "industry": pl.String,
    "year": pl.Int64,
    "through_month": pl.Int64,
}
EVALUATIONS = pl.Schema(
    {
        **_FIRM,
        "source": pl.String,
        "scheme_id": pl.String,
        "cohort": pl.String,
        "score": pl.Float64,
        "class": pl.String,
        "rank": pl.Int64,
        "cohort_size": pl.Int64,
        **dict.fromkeys(INDICATORS, pl.Float64),
        "not_rated_reason": pl.String,
    }
)
_VALUES = ", ".join(f"(e.indicators->'values'->>'{name}')::float8" for name in INDICATORS)
_FIRM_WHERE = """
  AND ($2::text IS NULL OR f.town = $2)
  AND ($3::text IS NULL OR f.industry LIKE $3 || '%')
"""
_EVALUATIONS = f"""
SELECT e.firm_id, f.name, f.credit_code, f.town, f.industry, e.year, e.through_month,
       e.source, e.scheme_id, e.cohort, e.score, e.class, e.rank, e.cohort_size, {_VALUES},
       e.indicators->>'reason'
FROM evaluations e JOIN firms f ON f.id = e.firm_id
WHERE e.year = $1 {_FIRM_WHERE}
  AND ($4::text IS NULL OR e.cohort = $4)
  AND ($5::text IS NULL OR e.class = $5)
  AND ($6::text IS NULL OR e.source = $6)
ORDER BY e.source, e.cohort, e.rank NULLS LAST, e.firm_id
"""

CARBON = pl.Schema(
    {
        **_FIRM,
        "sector": pl.String,
        "co2_t": pl.Float64,
        "value_added_10k": pl.Float64,
        "l": pl.Float64,
        "sector_l": pl.Float64,
        "k": pl.Float64,
        "grade": pl.Int64,
        "level": pl.String,
        "factor": pl.Float64,
        "factor_year": pl.Int64,
        "factor_region": pl.String,
        "factor_kind": pl.String,
        "gas_kg_co2_per_m3": pl.Float64,
    }
)
_CARBON_COLUMNS = """
SELECT c.firm_id, f.name, f.credit_code, f.town, f.industry, c.year, c.through_month,
       c.sector, c.co2_t, c.value_added_10k, c.l, c.sector_l, c.k, c.grade, c.level,
       c.factor, c.factor_year, c.factor_region, c.factor_kind, c.gas_kg_co2_per_m3
FROM carbon_grades c JOIN firms f ON f.id = c.firm_id
"""
_CARBON = f"""
{_CARBON_COLUMNS}
WHERE c.year = $1 {_FIRM_WHERE}
  AND ($4::int IS NULL OR c.grade = $4)
  AND ($5::text IS NULL OR c.level = $5)
ORDER BY c.sector, c.k, c.firm_id
"""

LABELS = {
    "firm_id": "企业编号",
    "firm": "企业名称",
    "credit_code": "统一社会信用代码",
    "town": "镇街",
    "industry": "行业代码",
    "year": "年度",
    "through_month": "截至月份",
    "source": "来源",
    "scheme_id": "评价方案",
    "cohort": "评价分组",
    "score": "综合得分",
    "class": "评价类别",
    "rank": "组内排名",
    "cohort_size": "组内企业数",
    "tax_per_mu": "亩均税收(万元/亩)",
    "va_per_mu": "亩均增加值(万元/亩)",
    "va_per_tce": "单位能耗增加值(万元/吨标准煤)",
    "va_per_t_emissions": "单位排放增加值(万元/吨)",
    "va_per_employee": "全员劳动生产率(万元/人)",
    "rnd_share": "研发经费占主营业务收入比重",
    "tax_per_kwh": "单位电耗税收(元/千瓦时)",
    "not_rated_reason": "不参评原因",
    "sector": "行业",
    "co2_t": "二氧化碳排放(吨)",
    "value_added_10k": "增加值(万元)",
    "l": "碳排放强度(吨/万元)",
    "sector_l": "行业碳排放强度(吨/万元)",
    "k": "碳效指数",
    "grade": "碳效等级",
    "level": "碳排放水平",
    "factor": "电网排放因子(吨/兆瓦时)",
    "factor_year": "排放因子年度",
    "factor_region": "排放因子区域",
    "factor_kind": "排放因子类型",
    "gas_kg_co2_per_m3": "天然气排放因子(千克/立方米)",
}


async def evaluations(
    conn: Conn,
    *,
    filters: Filters,
    cohort: str | None = None,
    cls: str | None = None,
    source: str | None = None,
) -> pl.DataFrame:
    """The year's evaluations (both sources unless ``source``), by cohort and rank."""
    args = (filters.year, filters.town, filters.industry, cohort, cls, source)
    return await fetch(conn, _EVALUATIONS, *args, schema=EVALUATIONS)


async def carbon_grades(
    conn: Conn, *, filters: Filters, grade: int | None = None, level: str | None = None
) -> pl.DataFrame:
    """The year's carbon grades, by sector and K."""
    args = (filters.year, filters.town, filters.industry, grade, level)
    return await fetch(conn, _CARBON, *args, schema=CARBON)


_HISTORY = """
SELECT year, through_month, source, scheme_id, cohort, score, class, rank, cohort_size,
       indicators, computed_at
FROM evaluations WHERE firm_id = $1 ORDER BY year DESC, source
"""
_FIRM_CARBON = f"{_CARBON_COLUMNS} WHERE c.firm_id = $1 ORDER BY c.year DESC"


async def history(conn: Conn, firm_id: int) -> dict[str, Any]:
    """A firm's classes by year (computed and official) and its carbon grades."""
    rows = await conn.fetch(_HISTORY, firm_id)
    items = [dict(r) | {"indicators": orjson.loads(r["indicators"])} for r in rows]
    carbon = await fetch(conn, _FIRM_CARBON, firm_id, schema=CARBON)
    return {"firm_id": firm_id, "evaluations": items, "carbon_grades": carbon.to_dicts()}

"""Officially published per-mu classes, imported beside the computed ones (source
``official``) from the bureau's CSV/XLSX: credit code, year, class, optional score.

Read with `registry.sheets.read_sheet` and `OFFICIAL_COLUMNS`. All-or-nothing unless
``partial``; every bad row is reported with its row number. A firm's official class for a
year is replaced when imported again. Its cohort is that of the computed evaluation of
the year if there is one, else the one its registration gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from alerts.evaluation import CLASSES, firm_cohort
from alerts.frames import fetch
from meterhub.db import Conn
from registry import audit
from registry.imports import ImportReport
from registry.keys import Principal
from registry.sheets import Sheet

OFFICIAL_COLUMNS: Mapping[str, str] = {
    "统一社会信用代码": "credit_code",
    "信用代码": "credit_code",
    "年度": "year",
    "年份": "year",
    "评价年度": "year",
    "类别": "class",
    "评价类别": "class",
    "等级": "class",
    "评价等级": "class",
    "得分": "score",
    "综合得分": "score",
    "评价得分": "score",
}
_VALID = (*CLASSES, "D")

_FIRMS = pl.Schema(
    {
        "credit_code": pl.String,
        "firm_id": pl.Int64,
        "above_scale": pl.Boolean,
        "land_mu": pl.Float64,
    }
)
_FIRMS_SQL = """
SELECT credit_code, id, above_scale, land_mu::float8 FROM firms
WHERE credit_code = ANY($1::text[])
"""
_UPSERT = """
INSERT INTO evaluations (firm_id, year, source, cohort, score, class)
VALUES ($1, $2, 'official',
        coalesce((SELECT cohort FROM evaluations
                  WHERE firm_id = $1 AND year = $2 AND source = 'computed'), $3),
        $4, $5)
ON CONFLICT (firm_id, year, source) DO UPDATE SET
    cohort = EXCLUDED.cohort, score = EXCLUDED.score, class = EXCLUDED.class,
    computed_at = now()
RETURNING xmax = 0
"""


def _error(row: int, column: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


Parsed = tuple[str, int, str, float | None]  # credit code, year, class, score


def _parse(row: dict[str, str], number: int) -> tuple[Parsed, list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    code = row.get("credit_code", "").strip().upper()
    if not code:
        errors.append(_error(number, "credit_code", "missing"))
    year_text = row.get("year", "").strip().removesuffix("年")
    try:
        value = float(year_text)  # a workbook's number cell may read as "2025.0"
        year = int(value) if value.is_integer() else 0
    except ValueError:
        year = 0
    if not 2000 <= year <= 2100:
        errors.append(_error(number, "year", f"{row.get('year')!r} is not a year"))
    cls = row.get("class", "").strip().upper().removesuffix("类")
    if cls not in _VALID:
        errors.append(_error(number, "class", f"{row.get('class')!r} is not one of A, B, C, D"))
    score: float | None = None
    if row.get("score"):
        try:
            score = float(row["score"])
        except ValueError:
            errors.append(_error(number, "score", f"{row['score']!r} is not a number"))
    return (code, year, cls, score), errors


async def import_official(
    conn: Conn, *, sheet: Sheet, principal: Principal | None, partial: bool = False
) -> ImportReport:
    """Store the sheet's classes (source ``official``); audited when ``principal`` is a key."""
    report = ImportReport()
    parsed: list[tuple[int, Parsed]] = []
    for number, row in zip(sheet.row_numbers, sheet.rows, strict=True):
        values, errors = _parse(row, number)
        report.errors += errors
        if not errors:
            parsed.append((number, values))
    codes = sorted({values[0] for _, values in parsed})
    firms = await fetch(conn, _FIRMS_SQL, codes, schema=_FIRMS)
    cohorts = firms.with_columns(cohort=firm_cohort())
    known = {r["credit_code"]: (r["firm_id"], r["cohort"]) for r in cohorts.iter_rows(named=True)}
    seen: dict[tuple[str, int], int] = {}
    writes: list[tuple[Any, ...]] = []
    for number, (code, year, cls, score) in parsed:
        if code not in known:
            report.errors.append(_error(number, "credit_code", f"no registered firm {code}"))
            continue
        if (code, year) in seen:
            message = f"{code} {year} already in row {seen[(code, year)]}"
            report.errors.append(_error(number, "credit_code", message))
            continue
        seen[(code, year)] = number
        firm_id, cohort = known[code]
        writes.append((firm_id, year, cohort, score, cls))
    if report.errors and not partial:
        report.written = False
        return report
    async with conn.transaction():
        for values in writes:
            if await conn.fetchval(_UPSERT, *values):
                report.created += 1
            else:
                report.updated += 1
        if principal is not None:
            counts = {"created": report.created, "updated": report.updated}
            await audit.record(
                conn, principal, action="evaluation.import", target="evaluations", detail=counts
            )
    return report

"""Sorting and slicing of per-firm lists (nulls always last, ties by firm id)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import polars as pl


class Order(enum.StrEnum):
    DESC = "desc"
    ASC = "asc"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and how many rows there are in all."""

    frame: pl.DataFrame
    total: int
    limit: int
    offset: int

    def meta(self) -> dict[str, Any]:
        return {"total": self.total, "limit": self.limit, "offset": self.offset}


def paginate(
    frame: pl.DataFrame, *, sort: str, order: Order, limit: int, offset: int, rank: bool = False
) -> Page:
    """``frame`` sorted by ``sort`` (then ``firm_id``), optionally ranked 1.., and sliced."""
    frame = frame.sort([sort, "firm_id"], descending=[order is Order.DESC, False], nulls_last=True)
    if rank:
        frame = frame.with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64))
    return take(frame, limit=limit, offset=offset)


def take(frame: pl.DataFrame, *, limit: int, offset: int) -> Page:
    """The page of ``frame`` (already in order) at ``offset``, counting all its rows."""
    return Page(frame.slice(offset, limit), frame.height, limit, offset)


#: Types of the firm columns every list starts with (`firm_label_columns` heads them).
FIRM_SCHEMA = pl.Schema(
    {
        "firm_id": pl.Int64(),
        "credit_code": pl.String(),
        "name": pl.String(),
        "town": pl.String(),
        "industry": pl.String(),
    }
)


def firm_label_columns() -> dict[str, str]:
    """Chinese headers of the firm columns every list shares."""
    return {
        "rank": "排名",
        "firm_id": "企业编号",
        "credit_code": "统一社会信用代码",
        "name": "企业名称",
        "town": "镇街",
        "industry": "行业代码",
    }

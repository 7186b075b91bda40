"""The JSON bodies of the trend endpoints, for OpenAPI (CSV and XLSX carry the rows only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Number = float | None


class SeriesTotal(BaseModel):
    energy: Number = Field(description="sum over the range, in `unit`")
    estimated_share: Number = Field(description="part of the energy from estimated intervals")
    compare_energy: Number = Field(None, description="the same over the comparison range")
    change: Number = None
    change_ratio: Number = Field(None, description="(energy - compare_energy) / compare_energy")


class SeriesBucket(BaseModel):
    group: str | None = Field(None, description="town or GB/T 4754 division, with breakdown")
    bucket: str = Field(description="bucket start, Asia/Shanghai ISO 8601 (+08:00)")
    energy: Number = Field(description="null when there is no data for the bucket")
    estimated_share: Number
    compare_bucket: str | None = Field(None, description="the bucket compared with, if any")
    compare_energy: Number = None
    change: Number = None
    change_ratio: Number = None


class SeriesOut(BaseModel):
    scope: str
    id: str | None
    town: str | None = Field(description="the town the answer is restricted to, if any")
    utility: str
    unit: str
    granularity: str
    timezone: str
    start: str = Field(description="first bucket start")
    end: str = Field(description="end of the last bucket (exclusive)")
    compare: str | None
    breakdown: str | None
    total: SeriesTotal
    buckets: list[SeriesBucket]


class TrendPage(BaseModel):
    total: int = Field(description="rows in all, before limit/offset")
    limit: int
    offset: int


class TrendFirm(BaseModel):
    firm_id: int
    credit_code: str
    name: str
    town: str
    industry: str


class TopRow(TrendFirm):
    rank: int
    energy: Number
    previous_energy: Number
    change: Number
    change_ratio: Number
    estimated_share: Number


class TopOut(TrendPage):
    by: str
    order: str
    utility: str
    unit: str
    start: str
    end: str
    previous_start: str = Field(description="start of the previous equal period")
    town: str | None
    industry: str | None
    items: list[TopRow]


class IntensityRow(TrendFirm):
    land_mu: Number
    electricity_kwh: Number
    gas_m3: Number
    water_t: Number
    tce: Number = Field(description="tonnes of standard coal, all utilities")
    output_value: Number = Field(description="yuan")
    value_added: Number = Field(description="yuan")
    figure_months: int
    kwh_per_10k_output: Number
    tce_per_10k_output: Number
    kwh_per_10k_value_added: Number
    tce_per_10k_value_added: Number
    kwh_per_mu: Number
    tce_per_mu: Number


class IntensityOut(TrendPage):
    month: str
    months: int
    basis: str
    kgce_per_unit: dict[str, float]
    town: str | None
    industry: str | None
    sort: str
    order: str
    items: list[IntensityRow]


class ProductionRow(TrendFirm):
    state: str = Field(description="running, reduced, stopped or unknown")
    energy: Number
    baseline: Number
    baseline_weeks: int
    ratio: Number


class ProductionOut(TrendPage):
    week: str
    start: str
    end: str
    complete: bool = Field(description="false while the week is still in progress")
    elapsed: float = Field(description="part of the week elapsed (1 when over)")
    utility: str
    rule: dict[str, float]
    town: str | None
    industry: str | None
    counts: dict[str, int]
    shares: dict[str, float]
    items: list[ProductionRow]


_FIRM: dict[str, Any] = {
    "firm_id": 42,
    "credit_code": "91330782MA2ABCDE1X",
    "name": "义乌某针织有限公司",
    "town": "苏溪",
    "industry": "C1711",
}

SERIES_EXAMPLE: dict[str, Any] = {
    "scope": "firm",
    "id": "42",
    "town": None,
    "utility": "electricity",
    "unit": "kWh",
    "granularity": "day",
    "timezone": "Asia/Shanghai",
    "start": "2026-03-02T00:00:00+08:00",
    "end": "2026-03-03T00:00:00+08:00",
    "compare": "yoy",
    "breakdown": None,
    "total": {
        "energy": 1200.0,
        "estimated_share": 0.0,
        "compare_energy": 1000.0,
        "change": 200.0,
        "change_ratio": 0.2,
    },
    "buckets": [
        {
            "bucket": "2026-03-02T00:00:00+08:00",
            "energy": 1200.0,
            "estimated_share": 0.0,
            "compare_bucket": "2025-03-02T00:00:00+08:00",
            "compare_energy": 1000.0,
            "change": 200.0,
            "change_ratio": 0.2,
        }
    ],
}

TOP_EXAMPLE: dict[str, Any] = {
    "by": "growth",
    "order": "desc",
    "utility": "electricity",
    "unit": "kWh",
    "start": "2026-03-01",
    "end": "2026-04-01",
    "previous_start": "2026-02-01",
    "town": None,
    "industry": "C17",
    "total": 1,
    "limit": 20,
    "offset": 0,
    "items": [
        {
            "rank": 1,
            **_FIRM,
            "energy": 150000.0,
            "previous_energy": 100000.0,
            "change": 50000.0,
            "change_ratio": 0.5,
            "estimated_share": 0.0,
        }
    ],
}

INTENSITY_EXAMPLE: dict[str, Any] = {
    "month": "2026-03",
    "months": 1,
    "basis": "calorific",
    "kgce_per_unit": {"electricity": 0.1229, "gas": 1.2143, "water": 0.2571},
    "town": "苏溪",
    "industry": None,
    "sort": "kwh_per_10k_output",
    "order": "desc",
    "total": 1,
    "limit": 50,
    "offset": 0,
    "items": [
        {
            **_FIRM,
            "land_mu": 12.5,
            "electricity_kwh": 12000.0,
            "gas_m3": None,
            "water_t": None,
            "tce": 1.4748,
            "output_value": 3000000.0,
            "value_added": 600000.0,
            "figure_months": 1,
            "kwh_per_10k_output": 40.0,
            "tce_per_10k_output": 0.004916,
            "kwh_per_10k_value_added": 200.0,
            "tce_per_10k_value_added": 0.02458,
            "kwh_per_mu": 960.0,
            "tce_per_mu": 0.117984,
        }
    ],
}

PRODUCTION_EXAMPLE: dict[str, Any] = {
    "week": "2026-W10",
    "start": "2026-03-02T00:00:00+08:00",
    "end": "2026-03-09T00:00:00+08:00",
    "complete": True,
    "elapsed": 1.0,
    "utility": "electricity",
    "rule": {"baseline_weeks": 4, "running_ratio": 0.7, "stopped_ratio": 0.1},
    "town": "苏溪",
    "industry": None,
    "counts": {"running": 1, "reduced": 0, "stopped": 0, "unknown": 0},
    "shares": {"running": 1.0, "reduced": 0.0, "stopped": 0.0},
    "total": 1,
    "limit": 100,
    "offset": 0,
    "items": [
        {
            **_FIRM,
            "state": "running",
            "energy": 9000.0,
            "baseline": 10000.0,
            "baseline_weeks": 4,
            "ratio": 0.9,
        }
    ],
}

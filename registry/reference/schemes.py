"""Per-mu evaluation schemes (亩均效益综合评价): a scheme's scoring method and class cuts,
and its indicators with weight, benchmark, unit and optional cap per cohort. A scheme is
written whole: its indicators are replaced with the ones given."""

from __future__ import annotations

import itertools
from typing import Any, Literal, Self

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from meterhub.db import Conn
from registry import audit
from registry.errors import NotFoundError
from registry.keys import Principal
from registry.reference.errors import InUseError
from registry.reference.values import Finite, Text

Db = Conn | asyncpg.Pool
Cohort = Literal["above_scale", "below_scale_3mu", "below_scale_small"]
IndicatorCode = Literal[
    "tax_per_mu",
    "va_per_mu",
    "va_per_tce",
    "va_per_t_emissions",
    "va_per_employee",
    "rnd_share",
    "tax_per_kwh",
]
CutClass = Literal["A", "B", "C"]
CUT_CLASSES: tuple[CutClass, ...] = ("A", "B", "C")


class Indicator(BaseModel):
    cohort: Cohort
    indicator: IndicatorCode
    weight: Finite = Field(gt=0, examples=[30])
    benchmark: Finite = Field(gt=0, examples=[24.097])
    unit: Text = Field(examples=["万元/亩"])
    cap: Finite | None = Field(default=None, gt=0, description="optional cap of the item's score")


_EXAMPLE: dict[str, Any] = {
    "id": "yiwu-2026",
    "name": "义乌市2026年度工业企业亩均效益综合评价 (example)",
    "year": 2026,
    "method": "ratio",
    "classing": "percentile",
    "cuts": {"A": 0.2, "B": 0.6, "C": 0.95},
    "source": "example scheme; replace with the published one",
    "indicators": [
        {
            "cohort": "above_scale",
            "indicator": "tax_per_mu",
            "weight": 60,
            "benchmark": 25.0,
            "unit": "万元/亩",
        },
        {
            "cohort": "above_scale",
            "indicator": "va_per_tce",
            "weight": 40,
            "benchmark": 2.7,
            "unit": "万元/吨标准煤",
        },
    ],
}


class Scheme(BaseModel):
    """A scheme: ratio (value / benchmark x weight) or minmax scoring; classes by percentile
    (cumulative shares of the cohort from the top: A <= 0.2, B <= 0.6, C <= 0.95, D the
    rest) or by score bands (the lowest score of A, B and C); cuts may name fewer classes
    (the same rules as `alerts.evaluation.Scheme` applies them by)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: str = Field(pattern=r"^[a-z0-9-]+$", examples=["yiwu-2026"])
    name: Text
    year: int = Field(ge=2000, le=2100)
    method: Literal["ratio", "minmax"] = "ratio"
    classing: Literal["percentile", "bands"] = "percentile"
    cuts: dict[CutClass, Finite] = Field(min_length=1)
    source: Text
    indicators: list[Indicator] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        values = [self.cuts[c] for c in CUT_CLASSES if c in self.cuts]
        rising = all(a < b for a, b in itertools.pairwise(values))
        if self.classing == "percentile" and not (rising and values[0] > 0 and values[-1] <= 1):
            raise ValueError("percentile cuts are rising shares within (0, 1] (A < B < C)")
        falling = all(a > b for a, b in itertools.pairwise(values))
        if self.classing == "bands" and not falling:
            raise ValueError("band cuts are falling lowest scores (A > B > C)")
        seen: set[tuple[str, str]] = set()
        for item in self.indicators:
            pair = (item.cohort, item.indicator)
            if pair in seen:
                raise ValueError(f"indicator {item.indicator} given twice for {item.cohort}")
            seen.add(pair)
        return self


_SCHEMES = "SELECT id, name, year, method, classing, cuts::text, source FROM evaluation_schemes"
_INDICATORS = (
    "SELECT scheme_id, cohort, indicator, weight, benchmark, unit, cap "
    "FROM evaluation_indicators WHERE scheme_id = ANY($1::text[]) ORDER BY scheme_id, cohort, "
    "indicator"
)
_UPSERT = """
INSERT INTO evaluation_schemes (id, name, year, method, classing, cuts, source)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, year = EXCLUDED.year,
    method = EXCLUDED.method, classing = EXCLUDED.classing, cuts = EXCLUDED.cuts,
    source = EXCLUDED.source
RETURNING xmax = 0
"""
_INSERT_INDICATOR = (
    "INSERT INTO evaluation_indicators (scheme_id, cohort, indicator, weight, benchmark, unit, "
    "cap) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


async def list_schemes(
    db: Db, *, year: int | None = None, scheme_id: str | None = None
) -> list[Scheme]:
    """Every scheme (of ``year`` / with id ``scheme_id``, if given) with its indicators, by
    year then id."""
    rows = await db.fetch(
        _SCHEMES + " WHERE ($1::int IS NULL OR year = $1) AND ($2::text IS NULL OR id = $2) "
        "ORDER BY year, id",
        year,
        scheme_id,
    )
    items = await db.fetch(_INDICATORS, [r["id"] for r in rows])
    by_scheme: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        values = dict(item)
        by_scheme.setdefault(values.pop("scheme_id"), []).append(values)
    return [
        Scheme(
            **(dict(r) | {"cuts": orjson.loads(r["cuts"])}),
            indicators=[Indicator(**i) for i in by_scheme[r["id"]]],
        )
        for r in rows
        if r["id"] in by_scheme
    ]


async def get_scheme(db: Db, scheme_id: str) -> Scheme:
    found = await list_schemes(db, scheme_id=scheme_id)
    if not found:
        raise NotFoundError(f"no evaluation scheme {scheme_id}")
    return found[0]


async def write_scheme(conn: Conn, scheme: Scheme) -> bool:
    """Insert or replace ``scheme`` with its indicators (no audit); True if it was new."""
    async with conn.transaction():
        created = bool(
            await conn.fetchval(
                _UPSERT,
                scheme.id,
                scheme.name,
                scheme.year,
                scheme.method,
                scheme.classing,
                orjson.dumps(scheme.cuts).decode(),
                scheme.source,
            )
        )
        await conn.execute("DELETE FROM evaluation_indicators WHERE scheme_id = $1", scheme.id)
        await conn.executemany(
            _INSERT_INDICATOR,
            [
                (scheme.id, i.cohort, i.indicator, i.weight, i.benchmark, i.unit, i.cap)
                for i in scheme.indicators
            ],
        )
    return created


async def upsert_scheme(conn: Conn, *, principal: Principal, scheme: Scheme) -> bool:
    """Insert or replace ``scheme`` whole, audited; True if it was new."""
    async with conn.transaction():
        created = await write_scheme(conn, scheme)
        await audit.record(
            conn,
            principal,
            action="scheme.upsert",
            target=f"scheme:{scheme.id}",
            detail=scheme.model_dump() | {"created": created},
        )
    return created


async def delete_scheme(conn: Conn, *, principal: Principal, scheme_id: str) -> None:
    """Delete a scheme and its indicators: `NotFoundError` if there is none, `InUseError`
    if evaluations were computed with it."""
    async with conn.transaction():
        try:
            deleted = await conn.fetchval(
                "DELETE FROM evaluation_schemes WHERE id = $1 RETURNING id", scheme_id
            )
        except asyncpg.ForeignKeyViolationError as exc:
            message = f"evaluations were computed with scheme {scheme_id}; it stays"
            raise InUseError(message) from exc
        if deleted is None:
            raise NotFoundError(f"no evaluation scheme {scheme_id}")
        await audit.record(conn, principal, action="scheme.delete", target=f"scheme:{scheme_id}")

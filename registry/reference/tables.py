"""The flat reference tables (holidays, grid emission factors, industry benchmarks): one
`Table` spec each, from which listing, upsert and delete SQL is made. Every write is
audited with the key that made it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, Field, field_validator

from meterhub.db import Conn
from registry import audit
from registry.errors import NotFoundError
from registry.firms import FirmIn
from registry.keys import Principal
from registry.reference.values import Finite, Text, coded, parse_day

M = TypeVar("M", bound=BaseModel)
Db = Conn | asyncpg.Pool

HolidayKind = Literal["holiday", "workday", "shutdown"]
HOLIDAY_KINDS = {"节假日": "holiday", "放假": "holiday", "调休上班": "workday", "补班": "workday"}
HOLIDAY_KINDS |= {"工作日": "workday", "停工": "shutdown", "停工期": "shutdown"}
FactorKind = Literal["average", "excl_traded_nonfossil", "fossil"]
FACTOR_KINDS = {
    "平均": "average",
    "不含市场化交易非化石": "excl_traded_nonfossil",
    "化石": "fossil",
}
#: Units a grid factor may be given in; all equal to tCO2/MWh.
FACTOR_UNITS = {"tCO2/MWh", "t/MWh", "kgCO2/kWh", "kg/kWh", "吨/兆瓦时"}
FACTOR_UNIT: Literal["tCO2/MWh"] = "tCO2/MWh"


class Holiday(BaseModel):
    """A day the rules judge differently: a statutory holiday, an adjusted working day
    (调休上班, a weekend day that is worked) or a customary shutdown (春节停工期)."""

    day: date = Field(examples=["2027-02-06"])
    kind: HolidayKind = Field(description="holiday, workday (调休上班) or shutdown (停工期)")
    name: Text = Field(examples=["春节"])
    source: Text = Field(examples=["国办发明电〔2026〕号 (transcribed: verify)"])

    @field_validator("day", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        return parse_day(value)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        return coded(value, HOLIDAY_KINDS)


class GridFactor(BaseModel):
    """A year's grid CO2 emission factor for a region, of one kind."""

    year: int = Field(ge=2000, le=2100, examples=[2023])
    region: Text = Field(examples=["zhejiang"], description="e.g. zhejiang, east_china, national")
    kind: FactorKind = Field(
        description="average, excl_traded_nonfossil (excluding traded non-fossil) or fossil"
    )
    tco2_per_mwh: Finite = Field(gt=0, examples=[0.5153])
    unit: Literal["tCO2/MWh"] = Field(
        default=FACTOR_UNIT, description="always tCO2/MWh (kgCO2/kWh is accepted: the same)"
    )
    source: Text = Field(examples=["provincial ecology department notice (unconfirmed)"])

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        return coded(value, FACTOR_KINDS)

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in FACTOR_UNITS:
            return FACTOR_UNIT
        return value


class Benchmark(BaseModel):
    """An industry's benchmark for one indicator and year (e.g. kWh per 10k yuan)."""

    industry: str = Field(description="GB/T 4754 code or prefix, e.g. C17", examples=["C17"])
    year: int = Field(ge=2000, le=2100, examples=[2025])
    indicator: Text = Field(examples=["kwh_per_10k_output"])
    value: Finite = Field(examples=[420.0])
    unit: Text = Field(examples=["kWh/万元"])
    source: Text = Field(examples=["义乌市经信局 2025 行业能效标杆 (example)"])

    @field_validator("industry", mode="before")
    @classmethod
    def _industry(cls, value: Any) -> Any:
        return FirmIn._industry(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Table(Generic[M]):
    """A reference table (of at least two non-key columns): its SQL name, audit noun, row
    model, primary key, other columns, filters (query parameter -> SQL condition with
    ``{p}`` for the parameter) and order."""

    name: str
    noun: str
    model: type[M]
    keys: tuple[str, ...]
    values: tuple[str, ...]
    filters: dict[str, str]
    order: str

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.values

    def row_values(self, row: M) -> tuple[Any, ...]:
        dumped = row.model_dump()
        return tuple(dumped[c] for c in self.columns)

    def target(self, key: tuple[Any, ...]) -> str:
        return f"{self.noun}:" + "/".join(map(str, key))

    def upsert_sql(self) -> str:
        params = ", ".join(f"${i}" for i in range(1, len(self.columns) + 1))
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.values)
        mine = ", ".join(f"t.{c}" for c in self.values)
        theirs = ", ".join(f"EXCLUDED.{c}" for c in self.values)
        return (
            f"INSERT INTO {self.name} AS t ({', '.join(self.columns)}) VALUES ({params}) "
            f"ON CONFLICT ({', '.join(self.keys)}) DO UPDATE SET {sets} "
            f"WHERE ({mine}) IS DISTINCT FROM ({theirs}) RETURNING xmax = 0"
        )

    def delete_sql(self) -> str:
        match = " AND ".join(f"{c} = ${i}" for i, c in enumerate(self.keys, start=1))
        return f"DELETE FROM {self.name} WHERE {match} RETURNING {', '.join(self.columns)}"


HOLIDAYS = Table(
    name="holidays",
    noun="holiday",
    model=Holiday,
    keys=("day",),
    values=("kind", "name", "source"),
    filters={
        "year": "day >= make_date({p}::int, 1, 1) AND day < make_date({p}::int + 1, 1, 1)",
        "kind": "kind = {p}",
    },
    order="day",
)
GRID_FACTORS = Table(
    name="grid_emission_factors",
    noun="grid_factor",
    model=GridFactor,
    keys=("year", "region", "kind"),
    values=("tco2_per_mwh", "source"),
    filters={"year": "year = {p}::int", "region": "region = {p}", "kind": "kind = {p}"},
    order="year, region, kind",
)
BENCHMARKS = Table(
    name="industry_benchmarks",
    noun="benchmark",
    model=Benchmark,
    keys=("industry", "year", "indicator"),
    values=("value", "unit", "source"),
    filters={
        "industry": "industry LIKE {p} || '%'",
        "year": "year = {p}::int",
        "indicator": "indicator = {p}",
    },
    order="industry, year, indicator",
)


async def list_rows(db: Db, table: Table[M], **filters: Any) -> list[M]:
    """``table``'s rows matching the given filters (None: not filtered), in its order."""
    given = [(name, value) for name, value in filters.items() if value is not None]
    where = [table.filters[name].format(p=f"${i}") for i, (name, _) in enumerate(given, 1)]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetch(
        f"SELECT {', '.join(table.columns)} FROM {table.name}{clause} ORDER BY {table.order}",
        *(value for _, value in given),
    )
    return [table.model(**dict(r)) for r in rows]


async def write_row(conn: Conn, table: Table[M], row: M) -> bool:
    """Insert or update ``row`` (no audit: the caller records it); True if it was new."""
    return bool(await conn.fetchval(table.upsert_sql(), *table.row_values(row)))


async def upsert_row(conn: Conn, *, principal: Principal, table: Table[M], row: M) -> bool:
    """Insert or update one row by its key, audited; True if it was new."""
    async with conn.transaction():
        created = await write_row(conn, table, row)
        await audit.record(
            conn,
            principal,
            action=f"{table.noun}.upsert",
            target=table.target(table.row_values(row)[: len(table.keys)]),
            detail=row.model_dump() | {"created": created},
        )
    return created


async def delete_row(
    conn: Conn, *, principal: Principal, table: Table[M], key: tuple[Any, ...]
) -> M:
    """Delete the row with ``key`` (`NotFoundError` if there is none), audited; the row."""
    target = table.target(key)
    async with conn.transaction():
        row = await conn.fetchrow(table.delete_sql(), *key)
        if row is None:
            raise NotFoundError(f"no {target}")
        deleted = table.model(**dict(row))
        await audit.record(
            conn, principal, action=f"{table.noun}.delete", target=target, detail=dict(row)
        )
    return deleted

"""Firms: registration, change, listing, and the one upsert imports and simulators use."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from meterhub.db import Conn
from meterhub.uscc import is_valid
from registry import audit
from registry.errors import ConflictError, NotFoundError
from registry.fields import Text
from registry.keys import Principal
from registry.scope import check_town
from registry.towns import TownNames, canonical_town

#: firms.land_mu is numeric(12, 2).
MAX_LAND_MU = Decimal(10**10)
INDUSTRY = re.compile(r"^[A-T]([0-9]{2}([0-9]{1,2})?)?$")


class FirmIn(BaseModel):
    """A firm as registered by the bureau."""

    credit_code: str = Field(
        description="统一社会信用代码 (GB 32100, 18 characters)", examples=["91330782MA0000005K"]
    )
    name: Text = Field(min_length=1, examples=["义乌市某某针织有限公司"])
    industry: Text = Field(description="GB/T 4754 code, e.g. C1711", examples=["C1711"])
    town: Text = Field(
        min_length=1,
        description="镇街: short or full name (苏溪 or 苏溪镇); stored as the short one",
        examples=["苏溪"],
    )
    land_mu: Decimal | None = Field(
        default=None, ge=0, lt=MAX_LAND_MU, description="land area in mu"
    )
    above_scale: bool = Field(default=False, description="规上 (above designated size)")
    tags: list[Text] = Field(default_factory=list, examples=[["D-class"]])

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        value = value.strip().upper()
        if not is_valid(value):
            raise ValueError("not a valid unified social credit code (check character)")
        return value

    @field_validator("industry")
    @classmethod
    def _industry(cls, value: str) -> str:
        value = value.strip().upper()
        if not INDUSTRY.match(value):
            raise ValueError("not a GB/T 4754 code (section letter and 2-4 digits, e.g. C1711)")
        return value


class FirmPatch(BaseModel):
    """The fields to change; only ``land_mu`` may be set to null (the others are required
    of a firm: leave them out to keep them)."""

    name: Annotated[Text, Field(min_length=1)] | SkipJsonSchema[None] = None
    industry: Text | SkipJsonSchema[None] = None
    town: Annotated[Text, Field(min_length=1)] | SkipJsonSchema[None] = None
    land_mu: Decimal | None = Field(default=None, ge=0, lt=MAX_LAND_MU)
    above_scale: bool | SkipJsonSchema[None] = None
    tags: list[Text] | SkipJsonSchema[None] = None

    @field_validator("industry")
    @classmethod
    def _industry(cls, value: str | None) -> str | None:
        return None if value is None else FirmIn._industry(value)

    @model_validator(mode="after")
    def _no_null_but_land(self) -> FirmPatch:
        nulls = sorted(
            n for n in self.model_fields_set if n != "land_mu" and getattr(self, n) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null (leave a field out to keep it)")
        return self


class Firm(FirmIn):
    id: int
    meters: int = 0


Outcome = Literal["added", "changed", "unchanged"]

#: Registers a firm; its arguments come from `insert_values` (the town's short name).
INSERT = (
    "INSERT INTO firms AS f (credit_code, name, industry, town, land_mu, above_scale, tags) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_UPSERT = f"""
{INSERT}
ON CONFLICT (credit_code) DO UPDATE
SET name = EXCLUDED.name, industry = EXCLUDED.industry, town = EXCLUDED.town,
    land_mu = EXCLUDED.land_mu, above_scale = EXCLUDED.above_scale, tags = EXCLUDED.tags,
    updated_at = now()
WHERE (f.name, f.industry, f.town, f.land_mu, f.above_scale, f.tags)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.industry, EXCLUDED.town, EXCLUDED.land_mu,
                        EXCLUDED.above_scale, EXCLUDED.tags)
RETURNING id, xmax = 0 AS added
"""
_COLUMNS = "f.id, f.credit_code, f.name, f.industry, f.town, f.land_mu, f.above_scale, f.tags"
_SELECT = f"""
SELECT {_COLUMNS},
       (SELECT count(*) FROM meters m WHERE m.firm_id = f.id AND m.removed_at IS NULL) AS meters
FROM firms f
"""
SORTS = {
    "id": "f.id",
    "name": "f.name",
    "town": "f.town",
    "industry": "f.industry",
    "land_mu": "f.land_mu",
}


def _firm(row: asyncpg.Record) -> Firm:
    return Firm(**dict(row))


def insert_values(firm: FirmIn) -> tuple[Any, ...]:
    """``firm``'s values in the order of the columns of `INSERT`."""
    return (
        firm.credit_code,
        firm.name,
        firm.industry,
        firm.town,
        firm.land_mu,
        firm.above_scale,
        firm.tags,
    )


async def get_firm(conn: Conn | asyncpg.Pool, firm_id: int) -> Firm:
    row = await conn.fetchrow(_SELECT + " WHERE f.id = $1", firm_id)
    if row is None:
        raise NotFoundError(f"no firm {firm_id}")
    return _firm(row)


async def readable_firm(pool: asyncpg.Pool, *, principal: Principal, firm_id: int) -> Firm:
    """Firm ``firm_id`` if ``principal`` may read it: `NotFoundError` if there is none,
    `ForbiddenScopeError` if it is not in the key's town."""
    firm = await get_firm(pool, firm_id)
    check_town(principal, firm.town)
    return firm


async def list_firms(
    conn: asyncpg.Pool,
    *,
    town: str | None,
    industry: str | None,
    q: str | None,
    tag: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[int, list[Firm]]:
    """Firms matching the filters (industry is a code prefix; q searches name and code)."""
    where = [
        "($1::text IS NULL OR f.town = $1)",
        "($2::text IS NULL OR f.industry LIKE $2 || '%')",
        "($3::text IS NULL OR f.name ILIKE '%' || $3 || '%' OR f.credit_code = upper($3))",
        "($4::text IS NULL OR $4 = ANY (f.tags))",
    ]
    clause = " WHERE " + " AND ".join(where)
    args: list[Any] = [town, industry, q, tag]
    total = await conn.fetchval("SELECT count(*) FROM firms f" + clause, *args)
    descending = sort.startswith("-")
    order = f"{SORTS[sort.lstrip('-')]} {'DESC' if descending else 'ASC'}, f.id"
    rows = await conn.fetch(
        _SELECT + clause + f" ORDER BY {order} LIMIT $5 OFFSET $6", *args, limit, offset
    )
    return int(total), [_firm(r) for r in rows]


async def upsert_firm(conn: Conn, firm: FirmIn, *, towns: TownNames) -> tuple[int, Outcome]:
    """Register ``firm`` or bring its registration up to date (by credit code), its town
    named by ``towns`` (`UnknownTownError` if it is none); no audit row (the caller records
    the batch)."""
    firm = firm.model_copy(update={"town": towns.canonical(firm.town)})
    row = await conn.fetchrow(_UPSERT, *insert_values(firm))
    if row is None:
        firm_id: int = await conn.fetchval(
            "SELECT id FROM firms WHERE credit_code = $1", firm.credit_code
        )
        return firm_id, "unchanged"
    return int(row["id"]), "added" if row["added"] else "changed"


async def create_firm(conn: Conn, *, principal: Principal, firm: FirmIn) -> Firm:
    """Register ``firm``: `ConflictError` if its credit code is taken, `UnknownTownError` if
    its town is none of the towns table's."""
    firm = firm.model_copy(update={"town": await canonical_town(conn, firm.town)})
    async with conn.transaction():
        try:
            firm_id = await conn.fetchval(INSERT + " RETURNING id", *insert_values(firm))
        except asyncpg.UniqueViolationError as exc:
            raise ConflictError(f"a firm with credit code {firm.credit_code} exists") from exc
        await audit.record(
            conn,
            principal,
            action="firm.create",
            target=f"firm:{firm_id}",
            detail=firm.model_dump(),
        )
        return await get_firm(conn, firm_id)


async def update_firm(conn: Conn, *, principal: Principal, firm_id: int, patch: FirmPatch) -> Firm:
    changes = patch.model_dump(exclude_unset=True)
    if changes.get("town") is not None:
        changes["town"] = await canonical_town(conn, changes["town"])
    async with conn.transaction():
        current = await get_firm(conn, firm_id)
        if changes:
            merged = {**current.model_dump(), **changes}
            await conn.execute(
                "UPDATE firms SET name = $2, industry = $3, town = $4, land_mu = $5, "
                "above_scale = $6, tags = $7, updated_at = now() WHERE id = $1",
                firm_id,
                merged["name"],
                merged["industry"],
                merged["town"],
                merged["land_mu"],
                merged["above_scale"],
                merged["tags"],
            )
            await audit.record(
                conn, principal, action="firm.update", target=f"firm:{firm_id}", detail=changes
            )
        return await get_firm(conn, firm_id)

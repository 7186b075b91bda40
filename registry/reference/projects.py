"""A firm's projects with their commissioning year and design energy use (the two-high
rule: >= 1000 tce a year for projects since 2018, >= 5000 tce before). A project is known by
its name within its firm: writes lock the firm's row, so a name is never doubled."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from meterhub.db import Conn
from registry import audit
from registry.errors import ConflictError
from registry.keys import Principal
from registry.reference.lists import lock_firm
from registry.reference.values import Finite, Text

Db = Conn | asyncpg.Pool


class ProjectIn(BaseModel):
    name: Text = Field(examples=["二期扩建"])
    commissioned_year: int = Field(ge=1950, le=2100, examples=[2019])
    design_tce: Finite | None = Field(
        default=None, ge=0, description="design comprehensive energy use, tce a year"
    )
    source: Text = Field(examples=["项目节能审查意见 (example)"])


class Project(ProjectIn):
    id: int
    firm_id: int


_COLUMNS = "firm_id, name, commissioned_year, design_tce, source"
_INSERT = f"INSERT INTO firm_projects ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
_UPDATE = (
    "UPDATE firm_projects SET commissioned_year = $3, design_tce = $4, source = $5 "
    "WHERE firm_id = $1 AND name = $2 RETURNING id"
)


def _values(firm_id: int, project: ProjectIn) -> tuple[Any, ...]:
    return (firm_id, project.name, project.commissioned_year, project.design_tce, project.source)


async def list_projects(db: Db, firm_id: int) -> list[Project]:
    rows = await db.fetch(
        f"SELECT id, {_COLUMNS} FROM firm_projects WHERE firm_id = $1 "
        "ORDER BY commissioned_year, name",
        firm_id,
    )
    return [Project(**dict(r)) for r in rows]


async def write_project(conn: Conn, firm_id: int, project: ProjectIn) -> bool:
    """Insert, or update the firm's project of that name, without audit; True if it was
    new. The firm's row is locked meanwhile, so two writers never double a project."""
    async with conn.transaction():
        await lock_firm(conn, firm_id)
        if await conn.fetchval(_UPDATE, *_values(firm_id, project)) is not None:
            return False
        await conn.execute(_INSERT, *_values(firm_id, project))
        return True


async def add_project(
    conn: Conn, *, principal: Principal, firm_id: int, project: ProjectIn
) -> Project:
    """Record a project: `NotFoundError` if there is no such firm, `ConflictError` if the
    firm has a project of that name."""
    async with conn.transaction():
        await lock_firm(conn, firm_id)
        taken = "SELECT 1 FROM firm_projects WHERE firm_id = $1 AND name = $2"
        if await conn.fetchval(taken, firm_id, project.name):
            raise ConflictError(f"firm {firm_id} has a project {project.name!r}")
        project_id = await conn.fetchval(_INSERT + " RETURNING id", *_values(firm_id, project))
        await audit.record(
            conn,
            principal,
            action="firm.project.add",
            target=f"firm:{firm_id}",
            detail=project.model_dump() | {"id": project_id},
        )
    return Project(id=project_id, firm_id=firm_id, **project.model_dump())

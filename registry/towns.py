"""Yiwu's towns and streets (镇街), the reference list `firms.town` and town keys name.

A town is stored and scoped by its short name (``苏溪``); its full name (``苏溪镇``,
``稠城街道``) is accepted wherever a town is given and turned into the short one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import asyncpg
from pydantic import BaseModel, Field

from meterhub.db import Conn
from registry.errors import UnknownTownError

Kind = Literal["street", "town"]
Db = Conn | asyncpg.Pool


class Town(BaseModel):
    name: str = Field(description="short name, as firms and town keys store it", examples=["苏溪"])
    full_name: str = Field(examples=["苏溪镇"])
    kind: Kind = Field(description="street (街道) or town (镇)")
    notice_unit: str = Field(
        description="the unit that receives notices", examples=["苏溪镇人民政府"]
    )
    sort_order: int


@dataclass(frozen=True, slots=True)
class TownNames:
    """Every accepted name (short and full) -> the short name, and the short names in order;
    load once per batch with `town_names`."""

    aliases: Mapping[str, str]
    valid: list[str]

    def canonical(self, name: str) -> str:
        short = self.aliases.get(name.strip())
        if short is None:
            raise unknown_town(name, self.valid)
        return short


async def list_towns(conn: Db) -> list[Town]:
    rows = await conn.fetch(
        "SELECT name, full_name, kind, notice_unit, sort_order FROM towns ORDER BY sort_order, name"
    )
    return [Town(**dict(r)) for r in rows]


async def town_names(conn: Db) -> TownNames:
    towns = await list_towns(conn)
    aliases = {t.full_name: t.name for t in towns} | {t.name: t.name for t in towns}
    return TownNames(aliases, [t.name for t in towns])


def unknown_town(name: str, valid: list[str]) -> UnknownTownError:
    return UnknownTownError(
        f"unknown town {name!r}; valid towns: {', '.join(valid)}", valid_towns=valid
    )


async def canonical_town(conn: Db, name: str) -> str:
    """The short name of the town ``name`` (short or full, blanks around ignored), else
    `UnknownTownError` listing the valid ones."""
    return (await town_names(conn)).canonical(name)


async def optional_town(conn: Db, name: str | None) -> str | None:
    """`canonical_town` for a filter that may be absent (None stays None)."""
    return None if name is None else await canonical_town(conn, name)

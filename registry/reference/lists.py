"""A firm's dated memberships of the monitored lists (policy tasks 1-2): D-class, unrectified
D-class, high energy user, land to reclaim. A membership runs from ``since`` until the day
before ``until`` (open while ``until`` is empty); the weekly rules count it for every week
it overlaps. This, not the firm's undated ``tags``, is the source of truth for the lists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Literal, Self

import asyncpg
from pydantic import BaseModel, Field, field_validator, model_validator

from meterhub.db import Conn
from registry import audit
from registry.errors import NotFoundError
from registry.keys import Principal
from registry.reference.errors import InvalidReferenceError, MembershipOverlapError
from registry.reference.values import Note, Text, coded, parse_day

Db = Conn | asyncpg.Pool
ListName = Literal["d_class", "unrectified_d", "high_energy", "land_reclaim"]
LIST_NAMES = {
    "D类": "d_class",
    "D类企业": "d_class",
    "亩均评价D类": "d_class",
    "未整改D类": "unrectified_d",
    "D类未整改": "unrectified_d",
    "高耗能": "high_energy",
    "高耗能企业": "high_energy",
    "重点用能单位": "high_energy",
    "待收回土地": "land_reclaim",
    "低效用地": "land_reclaim",
    "低效用地待盘活": "land_reclaim",
}


class MembershipIn(BaseModel):
    list: ListName = Field(
        description="d_class (D类), unrectified_d (未整改D类), high_energy (高耗能), "
        "land_reclaim (待收回土地)"
    )
    since: date = Field(description="the first day on the list", examples=["2026-01-01"])
    until: date | None = Field(
        default=None, description="the first day off the list (empty: still on it)"
    )
    source: Text = Field(examples=["义乌市2025年度亩均效益评价结果 (example)"])
    note: Note = None

    @field_validator("list", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return coded(value, LIST_NAMES)

    @field_validator("since", "until", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        return parse_day(value)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class Membership(MembershipIn):
    firm_id: int


class MembershipEnd(BaseModel):
    until: date = Field(description="the first day off the list", examples=["2026-12-01"])
    note: Note = Field(default=None, description="replaces the note if given")


_COLUMNS = "firm_id, list, since, until, source, note"
_INSERT = f"INSERT INTO firm_lists ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
_UPSERT = f"""
{_INSERT}
ON CONFLICT (firm_id, list, since) DO UPDATE
SET until = EXCLUDED.until, source = EXCLUDED.source, note = EXCLUDED.note
RETURNING xmax = 0
"""


def overlaps(a_since: date, a_until: date | None, b_since: date, b_until: date | None) -> bool:
    """Whether two memberships [since, until) share a day (an open end runs for ever)."""
    return (b_until is None or a_since < b_until) and (a_until is None or b_since < a_until)


def check_overlap(firm_id: int, new: MembershipIn, others: Iterable[Membership]) -> None:
    """`MembershipOverlapError` if ``new`` shares a day with a membership of the same list
    among ``others`` (the one starting the same day is ``new`` itself when updating)."""
    for other in others:
        same = other.list == new.list and other.since != new.since
        if same and overlaps(new.since, new.until, other.since, other.until):
            raise MembershipOverlapError(
                f"firm {firm_id} is on {new.list} from {other.since} "
                f"until {other.until or 'now'} already",
                since=str(other.since),
            )


async def list_memberships(db: Db, firm_id: int) -> list[Membership]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM firm_lists WHERE firm_id = $1 ORDER BY list, since", firm_id
    )
    return [Membership(**dict(r)) for r in rows]


async def memberships_of(db: Db, firm_ids: list[int]) -> list[Membership]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM firm_lists WHERE firm_id = ANY($1::bigint[])", firm_ids
    )
    return [Membership(**dict(r)) for r in rows]


async def lock_firm(conn: Conn, firm_id: int) -> None:
    """Serialise changes of one firm's lists and projects, in the caller's transaction
    (`NotFoundError` if there is no such firm)."""
    if await conn.fetchval("SELECT id FROM firms WHERE id = $1 FOR UPDATE", firm_id) is None:
        raise NotFoundError(f"no firm {firm_id}")


def _values(firm_id: int, m: MembershipIn) -> tuple[Any, ...]:
    return (firm_id, m.list, m.since, m.until, m.source, m.note)


async def write_membership(conn: Conn, firm_id: int, membership: MembershipIn) -> bool:
    """Insert or update (by firm, list and since) without audit; True if it was new."""
    return bool(await conn.fetchval(_UPSERT, *_values(firm_id, membership)))


async def add_membership(
    conn: Conn, *, principal: Principal, firm_id: int, membership: MembershipIn
) -> Membership:
    """Put a firm on a list: `NotFoundError` if there is no such firm,
    `MembershipOverlapError` if it is on that list over any of the same days."""
    async with conn.transaction():
        await lock_firm(conn, firm_id)
        current = await list_memberships(conn, firm_id)
        if any(m.list == membership.list and m.since == membership.since for m in current):
            message = f"firm {firm_id} is on {membership.list} since {membership.since} already"
            raise MembershipOverlapError(message, since=str(membership.since))
        check_overlap(firm_id, membership, current)
        await conn.execute(_INSERT, *_values(firm_id, membership))
        await audit.record(
            conn,
            principal,
            action="firm.list.add",
            target=f"firm:{firm_id}",
            detail=membership.model_dump(),
        )
    return Membership(firm_id=firm_id, **membership.model_dump())


async def end_membership(
    conn: Conn,
    *,
    principal: Principal,
    firm_id: int,
    list_name: ListName,
    since: date,
    end: MembershipEnd,
) -> Membership:
    """Set the ``until`` of the membership that began on ``since`` (ending it, or moving its
    end): `NotFoundError` if there is none, `InvalidReferenceError` if ``until`` is not after
    ``since``, `MembershipOverlapError` if the new end runs into a later membership."""
    async with conn.transaction():
        await lock_firm(conn, firm_id)
        current = await list_memberships(conn, firm_id)
        found = [m for m in current if m.list == list_name and m.since == since]
        if not found:
            raise NotFoundError(f"firm {firm_id} has no {list_name} membership since {since}")
        if end.until <= since:
            raise InvalidReferenceError(f"until {end.until} is not after since {since}")
        changed = found[0].model_copy(
            update={"until": end.until, "note": end.note if end.note is not None else found[0].note}
        )
        check_overlap(firm_id, changed, current)
        await write_membership(conn, firm_id, changed)
        await audit.record(
            conn,
            principal,
            action="firm.list.end",
            target=f"firm:{firm_id}",
            detail={"list": list_name, "since": since, "until": end.until, "note": end.note},
        )
    return changed

"""Reading issued notices: the list, one notice (whole or one town's part), its items with
filters, and a case's history. A town reads only its own town's part."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from alerts.errors import CaseNotFoundError
from alerts.notices.exports.scope import town_part
from meterhub.db import Conn

_LIST = """
SELECT DISTINCT ON (week) week, revision, number, issued_at, content -> 'summary' AS summary
FROM notices ORDER BY week DESC, revision DESC
"""


@dataclass(frozen=True, slots=True)
class ItemFilters:
    town: str | None = None
    status: str | None = None
    colour: str | None = None
    problem: str | None = None
    overdue: bool | None = None


async def list_notices(conn: Conn, *, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(_LIST + " LIMIT $1 OFFSET $2", limit, offset)
    return [{**dict(r), "summary": json.loads(r["summary"])} for r in rows]


async def read(conn: Conn, *, week: date, revision: int | None, town: str | None) -> dict[str, Any]:
    """The notice of ``week`` (its latest revision unless ``revision``), with only
    ``town``'s part when a town is given: ``{"week", "revision", "number", "issued_at",
    "changes", "content"}``."""
    row = await conn.fetchrow(
        "SELECT week, revision, number, issued_at, content, changes FROM notices "
        "WHERE week = $1 AND ($2::int IS NULL OR revision = $2) "
        "ORDER BY revision DESC LIMIT 1",
        week,
        revision,
    )
    if row is None:
        which = f"revision {revision} of " if revision else ""
        raise CaseNotFoundError(f"no notice for {which}the week of {week}")
    document = json.loads(row["content"])
    changes = json.loads(row["changes"])
    if town is not None:
        document = town_part(document, town)
        ids = {i["case_id"] for t in document["towns"] for i in t["items"]}
        changes = [c for c in changes if c.get("case_id") in ids]
    return {
        "week": row["week"],
        "revision": row["revision"],
        "number": row["number"],
        "issued_at": row["issued_at"],
        "changes": changes,
        "content": document,
    }


def items(document: dict[str, Any], filters: ItemFilters) -> list[dict[str, Any]]:
    """The items of a notice that pass ``filters``."""
    out = []
    for town in document["towns"]:
        for item in town["items"]:
            if filters.town is not None and item["town"] != filters.town:
                continue
            if filters.status is not None and item["status"] != filters.status:
                continue
            if filters.colour is not None and item["colour"] != filters.colour:
                continue
            if filters.problem is not None and item["problem"] != filters.problem:
                continue
            if filters.overdue is not None and (item["colour"] == "red") != filters.overdue:
                continue
            out.append(item)
    return out


async def case_history(conn: Conn, case_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A case and its events, oldest first."""
    case = await conn.fetchrow("SELECT * FROM notice_cases WHERE id = $1", case_id)
    if case is None:
        raise CaseNotFoundError(f"no notice case {case_id}")
    events = await conn.fetch(
        "SELECT id, at, week, action, from_status, to_status, actor, note, evidence "
        "FROM case_events WHERE case_id = $1 ORDER BY id",
        case_id,
    )
    return dict(case), [{**dict(e), "evidence": json.loads(e["evidence"])} for e in events]

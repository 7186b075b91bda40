"""Generating a week's notice: bring the cases up to date, build the content, and issue
it as a revision. Regenerating with unchanged data issues nothing (the stored revision is
byte-identical); with changed data it issues the next revision with the list of what
changed. An issued revision is never rewritten."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from alerts.notices import cases, content
from alerts.notices.config import NoticeConfig
from alerts.rulebook import Rulebook
from alerts.weekly import monday
from meterhub.settings import Settings

#: pg_advisory_xact_lock class of notice generation (one generator per week at a time).
_LOCK_CLASS = 0x6E6F7469  # "noti"

_ITEM_FIELDS = (
    "status",
    "colour",
    "deadline",
    "weeks_running",
    "figures",
    "reasons",
    "latest_feedback",
    "evaluation_class",
    "carbon_grade",
    "town",
)


@dataclass(frozen=True, slots=True)
class Issued:
    week: date
    revision: int
    number: str
    digest: str
    new: bool  # False: the data had not changed, the stored revision stands
    changes: list[dict[str, Any]] = field(default_factory=list)


def canonical(document: dict[str, Any]) -> str:
    """The one JSON text of a notice: sorted keys, UTF-8, no spaces."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _items(document: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {i["case_id"]: i for town in document["towns"] for i in town["items"]}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two revisions: items added, removed or changed (the fields
    with their old and new values), and the header and summary."""
    out: list[dict[str, Any]] = []
    for section in ("header", "summary"):
        if before[section] != after[section]:
            fields = {
                k: [before[section].get(k), after[section].get(k)]
                for k in sorted(set(before[section]) | set(after[section]))
                if before[section].get(k) != after[section].get(k)
            }
            out.append({"section": section, "fields": fields})
    old, new = _items(before), _items(after)
    for case_id in sorted(set(old) | set(new)):
        if case_id not in old:
            out.append({"case_id": case_id, "firm": new[case_id]["firm"], "change": "added"})
        elif case_id not in new:
            out.append({"case_id": case_id, "firm": old[case_id]["firm"], "change": "removed"})
        else:
            fields = {
                k: [old[case_id].get(k), new[case_id].get(k)]
                for k in _ITEM_FIELDS
                if old[case_id].get(k) != new[case_id].get(k)
            }
            if fields:
                out.append(
                    {
                        "case_id": case_id,
                        "firm": new[case_id]["firm"],
                        "change": "changed",
                        "fields": fields,
                    }
                )
    return out


async def generate(
    pool: asyncpg.Pool,
    *,
    week: date,
    config: NoticeConfig,
    rulebook: Rulebook,
    settings: Settings,
) -> Issued:
    """Issue the notice of ``week`` (a Monday) unless the latest revision already says it."""
    week = monday(week)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, week.toordinal())
        await cases.sync(conn, week=week, config=config)
        document = await content.build(
            conn, week=week, config=config, rulebook=rulebook, settings=settings
        )
        text = canonical(document)
        digest = hashlib.sha256(text.encode()).hexdigest()
        latest = await conn.fetchrow(
            "SELECT revision, digest, content FROM notices WHERE week = $1 "
            "ORDER BY revision DESC LIMIT 1",
            week,
        )
        number = document["header"]["number"]
        if latest is not None and latest["digest"] == digest:
            return Issued(week, latest["revision"], number, digest, new=False)
        revision = 1 if latest is None else latest["revision"] + 1
        diff = [] if latest is None else changes(json.loads(latest["content"]), document)
        await conn.execute(
            "INSERT INTO notices (week, revision, number, digest, content, changes) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            week,
            revision,
            number,
            digest,
            text,
            json.dumps(diff, ensure_ascii=False),
        )
        return Issued(week, revision, number, digest, new=True, changes=diff)

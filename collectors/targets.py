"""What the poll scheduler polls: terminals from the `meters` registry, grouped by link."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import orjson

from ingest.quarantine import Reason
from meterhub.db import Conn, fingerprint
from meterhub.runtime import in_slices


@dataclass(frozen=True, slots=True)
class PollTarget:
    """One meter to poll. ``link`` names the connection it shares with other meters
    (a Modbus endpoint or an RS-485 bus); requests on one link go one at a time."""

    meter_id: int
    protocol: str
    link: str
    address: dict[str, Any]
    model: str | None
    interval: timedelta


@dataclass(frozen=True, slots=True)
class PollResult:
    """Values read (``Reading`` field names, meter side), fields that came back as garbage,
    what the meter refused (identifier or field -> the meter's error words), when the
    values were measured (default: when the poll returned) and the meter's own clock when
    it was read. A result without any value is a failed poll (`nothing_read` says why)."""

    values: dict[str, float]
    bad_fields: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    bad_reason: Reason = Reason.NON_FINITE
    measured_at: datetime | None = None
    meter_time: datetime | None = None


def nothing_read(result: PollResult) -> str:
    """Why a poll that read no value failed, in the meter's own words (for
    ``terminal_status.last_error``): each distinct answer once, with what it was given for."""
    answers: dict[str, list[str]] = defaultdict(list)
    for what, why in (*result.refused.items(), *result.bad_fields.items()):
        answers[why].append(what)
    words = "; ".join(f"{why} (for {', '.join(whats)})" for why, whats in answers.items())
    return "no value read: " + (words or "the meter answered with no value")


class Poller(Protocol):
    """A protocol's way of reading one meter; raises a `CollectorError` on failure."""

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult: ...

    async def close(self) -> None: ...


_SELECT = """
SELECT id, protocol, address, model, poll_interval FROM meters
WHERE protocol = ANY($1::text[]) AND removed_at IS NULL
"""


def link_of(protocol: str, address: dict[str, Any]) -> str:
    """The link a meter's requests travel on: its Modbus endpoint or its DL/T 645 bus."""
    if protocol == "modbus":
        scheme = address.get("framer", "tcp")
        return f"{scheme}://{address['host']}:{address['port']}"
    return str(address["bus"])


async def targets_fingerprint(conn: Conn | asyncpg.Pool, protocols: list[str]) -> tuple[int, int]:
    """The `meterhub.db.fingerprint` of what `load_targets` would load: equal, nothing to
    reload."""
    return await fingerprint(conn, _SELECT, protocols)


async def load_targets(
    conn: Conn | asyncpg.Pool, protocols: list[str]
) -> dict[str, list[PollTarget]]:
    """Active meters of ``protocols``, grouped by link, each link's by meter id (the rows come
    in the table's physical order, which an edit changes: a link's workers would restart for
    a reordering, and its polls change order)."""
    links: dict[str, list[PollTarget]] = defaultdict(list)
    async for rows in in_slices(await conn.fetch(_SELECT, protocols)):
        for row in rows:
            address = orjson.loads(row["address"])
            link = link_of(row["protocol"], address)
            links[link].append(
                PollTarget(
                    row["id"], row["protocol"], link, address, row["model"], row["poll_interval"]
                )
            )
    return {link: sorted(targets, key=_meter_id) for link, targets in links.items()}


def _meter_id(target: PollTarget) -> int:
    return target.meter_id

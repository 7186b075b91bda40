"""Terminal health per active meter: online/offline with the reason, last reading, last
error, clock drift.

A polled terminal (Modbus, DL/T 645) has the state the poll scheduler recorded; one that
has never answered a poll is offline, never online. A terminal that pushes (MQTT, the grid
feed) is judged by its last reading: online while one arrived within twice its interval
(plus `READING_GRACE`), else offline with "no reading since ...".

`check_meter` is the commissioning check: one poll of a registered terminal, shown, not stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel

from collectors.commissioning import CHECKED_PROTOCOLS, CheckReport, check_terminal
from collectors.networks import DialPolicy
from collectors.targets import PollTarget, link_of
from collectors.terminals import POLLED_PROTOCOLS
from meterhub.db import Conn
from meterhub.reading import LOCAL_TZ
from registry import audit
from registry.errors import ConflictError, InvalidError
from registry.keys import Principal
from registry.meters import get_meter

#: Slack beyond two intervals before a pushing terminal is offline (gateway batching).
READING_GRACE = timedelta(minutes=5)
#: How far back the last reading is looked for.
READING_LOOKBACK = timedelta(days=7)


class Terminal(BaseModel):
    meter_id: int
    code: str
    firm_id: int
    firm: str
    town: str
    protocol: str
    online: bool | None
    status_from: Literal["polls", "readings"]
    reason: str | None
    consecutive_failures: int | None
    last_reading_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    clock_drift_s: float | None


_SELECT = """
SELECT m.id AS meter_id, m.code, f.id AS firm_id, f.name AS firm, f.town, m.protocol,
       m.poll_interval, m.installed_at, s.online, s.last_success_at,
       s.consecutive_failures, s.last_attempt_at, s.last_error, s.clock_drift_s,
       (SELECT max(r.ts) FROM readings r WHERE r.meter_id = m.id
          AND r.ts > now() - $3::interval) AS last_reading_at
FROM meters m
JOIN firms f ON f.id = m.firm_id
LEFT JOIN terminal_status s ON s.meter_id = m.id
WHERE m.removed_at IS NULL
  AND ($1::text IS NULL OR f.town = $1)
  AND ($2::bigint IS NULL OR f.id = $2)
ORDER BY f.town, f.name, m.code
"""


def _local(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def _every(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    return f"{seconds // 60} min" if seconds % 3600 else f"{seconds // 3600} h"


def polled_state(row: asyncpg.Record | dict[str, Any]) -> tuple[bool | None, str | None]:
    """(online, reason) of a polled terminal from its `terminal_status` row (None: not
    polled yet)."""
    if row["online"] is None:
        return None, None
    if row["last_success_at"] is None:
        return False, f"never answered a poll: {row['last_error'] or 'no value read'}"
    if not row["online"]:
        return False, row["last_error"]
    return True, None


def pushed_state(
    *,
    last_reading_at: datetime | None,
    installed_at: datetime,
    interval: timedelta,
    now: datetime,
) -> tuple[bool | None, str | None]:
    """(online, reason) of a pushing terminal: a reading within 2 x ``interval`` +
    `READING_GRACE` of ``now`` is online; None while a new meter's first is not yet due."""
    window = 2 * interval + READING_GRACE
    expected = f"expected every {_every(interval)}"
    if last_reading_at is not None:
        if now - last_reading_at <= window:
            return True, None
        return False, f"no reading since {_local(last_reading_at)} ({expected})"
    if now - installed_at <= window:
        return None, None
    if now - installed_at <= READING_LOOKBACK:
        return False, f"no reading since installation at {_local(installed_at)} ({expected})"
    return False, f"no reading in the past {READING_LOOKBACK.days} days ({expected})"


def _terminal(row: asyncpg.Record, now: datetime) -> Terminal:
    values = dict(row)
    interval, installed_at = values.pop("poll_interval"), values.pop("installed_at")
    values.pop("last_success_at")
    if row["protocol"] in POLLED_PROTOCOLS:
        online, reason = polled_state(row)
        status_from: Literal["polls", "readings"] = "polls"
    else:
        online, reason = pushed_state(
            last_reading_at=row["last_reading_at"],
            installed_at=installed_at,
            interval=interval,
            now=now,
        )
        status_from = "readings"
    values.update(online=online, reason=reason, status_from=status_from)
    return Terminal(**values)


def _order(t: Terminal) -> int:
    return {False: 0, True: 1, None: 2}[t.online]


async def list_terminals(
    conn: Conn | asyncpg.Pool, *, town: str | None, firm_id: int | None, online: bool | None
) -> list[Terminal]:
    """Active meters of ``town`` / ``firm_id`` (None: any) in state ``online`` (None:
    any), offline ones first."""
    rows = await conn.fetch(_SELECT, town, firm_id, READING_LOOKBACK)
    now = datetime.now(UTC)
    items = [_terminal(r, now) for r in rows]
    if online is not None:
        items = [t for t in items if t.online is online]
    return sorted(items, key=_order)


async def check_meter(
    db: Conn | asyncpg.Pool,
    meter_id: int,
    *,
    principal: Principal | None,
    policy: DialPolicy,
    timeout: float = 2.0,
) -> CheckReport:
    """Poll active meter ``meter_id`` once (`check_terminal`); audited, nothing stored.
    `NotFoundError`, `ConflictError` for a removed meter, `InvalidError` for one that pushes.
    With a pool no connection is held while the meter is polled."""
    meter = await get_meter(db, meter_id)
    if meter.removed_at is not None:
        raise ConflictError(f"meter {meter_id} was removed at {meter.removed_at}")
    if meter.protocol not in CHECKED_PROTOCOLS:
        raise InvalidError(
            f"a {meter.protocol} terminal pushes its readings, there is nothing to poll: its "
            "status comes from its last reading (GET /v1/terminals)"
        )
    target = PollTarget(
        meter_id=meter.id,
        protocol=meter.protocol,
        link=link_of(meter.protocol, meter.address),
        address=meter.address,
        model=meter.model,
        interval=timedelta(seconds=meter.poll_interval_s),
    )
    report = await check_terminal(target, policy=policy, timeout=timeout)
    detail = {"ok": report.ok, "link": report.link, "error": report.error}
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            await audit.record(
                conn, principal, action="meter.check", target=f"meter:{meter_id}", detail=detail
            )
    else:
        await audit.record(
            db, principal, action="meter.check", target=f"meter:{meter_id}", detail=detail
        )
    return report

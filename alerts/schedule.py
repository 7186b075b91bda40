"""The weekly analytics on their own clock: every Monday at 08:00 Asia/Shanghai the week
that ended the night before is judged, then its rectification notice is issued. A service
that was down at that hour catches up at start (the last whole week without a run is
judged at once). Several processes may run the schedule: an advisory lock lets one of them
judge a week, the others skip it (a week run twice would give the same result anyway)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

import asyncpg

from alerts.notices.config import NoticeConfig
from alerts.notices.generate import generate
from alerts.rulebook import Rulebook
from alerts.weekly import run_week
from meterhub.logs import get_logger
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings

log = get_logger(__name__)

RUN_AT = time(8, 0)
#: pg_advisory_lock key of the weekly run ("mhalerts" in ASCII).
_LOCK = 0x6D68616C65727473


def last_whole_week(now: datetime) -> date:
    """The Monday of the last ISO week that has ended by ``now`` (Asia/Shanghai)."""
    today = now.astimezone(LOCAL_TZ).date()
    return today - timedelta(days=today.weekday() + 7)


def next_run(now: datetime) -> datetime:
    """The first Monday 08:00 Asia/Shanghai strictly after ``now``."""
    local = now.astimezone(LOCAL_TZ)
    monday = local.date() - timedelta(days=local.weekday())
    candidate = datetime.combine(monday, RUN_AT, LOCAL_TZ)
    return candidate if candidate > local else candidate + timedelta(weeks=1)


async def judge_if_due(
    pool: asyncpg.Pool,
    *,
    week: date,
    settings: Settings,
    rulebook: Rulebook,
    notices: NoticeConfig | None = None,
) -> bool:
    """Judge ``week``, and issue its notice when ``notices`` is given, unless the week has
    a run already or another process holds the lock."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            return False
        try:
            if await conn.fetchval("SELECT 1 FROM analytics_runs WHERE week = $1", week):
                return False
            summary = await run_week(pool, week=week, settings=settings, rulebook=rulebook)
            log.info(
                "weekly analytics done", week=str(week), firms=summary.firms, hits=summary.total
            )
            if notices is not None:
                issued = await generate(
                    pool, week=week, config=notices, rulebook=rulebook, settings=settings
                )
                log.info("weekly notice issued", number=issued.number, revision=issued.revision)
            return True
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)


async def run_schedule(
    pool: asyncpg.Pool,
    *,
    settings: Settings,
    rulebook: Rulebook,
    notices: NoticeConfig,
    stop: asyncio.Event,
) -> None:
    """Catch up on the last whole week, then judge each week at its Monday 08:00 until
    ``stop`` is set. Errors propagate: the caller's supervisor logs and restarts."""
    while not stop.is_set():
        now = datetime.now(LOCAL_TZ)
        await judge_if_due(
            pool,
            week=last_whole_week(now),
            settings=settings,
            rulebook=rulebook,
            notices=notices,
        )
        delay = (next_run(now) - now).total_seconds()
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            continue

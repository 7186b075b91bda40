"""The weekly clock: Monday 08:00 Asia/Shanghai, one run per week across processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from alerts import rulebook
from alerts.schedule import judge_if_due, last_whole_week, next_run
from meterhub.reading import LOCAL_TZ
from meterhub.settings import Settings


def yiwu(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (yiwu(2026, 11, 30, 7, 59), yiwu(2026, 11, 30, 8, 0)),
        (yiwu(2026, 11, 30, 8, 0), yiwu(2026, 12, 7, 8, 0)),
        (yiwu(2026, 12, 2, 12, 0), yiwu(2026, 12, 7, 8, 0)),
        # Sunday 23:30 UTC is Monday 07:30 in Yiwu.
        (datetime(2026, 11, 29, 23, 30, tzinfo=UTC), yiwu(2026, 11, 30, 8, 0)),
    ],
)
def test_next_run_is_the_next_monday_0800_in_yiwu(now: datetime, expected: datetime) -> None:
    assert next_run(now) == expected


def test_the_last_whole_week() -> None:
    assert last_whole_week(yiwu(2026, 11, 30, 8, 0)) == date(2026, 11, 23)
    assert last_whole_week(yiwu(2026, 11, 29, 23, 0)) == date(2026, 11, 16)


@pytest.mark.integration
async def test_a_week_is_judged_once_and_never_while_another_process_holds_the_lock(
    settings: Settings,
) -> None:
    week = date(2031, 3, 3)  # a week no other test judges
    book = rulebook.load()
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=3)
    try:
        holder = await asyncpg.connect(settings.dsn())
        try:
            await holder.execute("SELECT pg_advisory_lock(x'6D68616C65727473'::bigint)")
            assert not await judge_if_due(pool, week=week, settings=settings, rulebook=book)
        finally:
            await holder.close()
        assert await judge_if_due(pool, week=week, settings=settings, rulebook=book)
        assert not await judge_if_due(pool, week=week, settings=settings, rulebook=book)
        runs = await pool.fetchval("SELECT count(*) FROM analytics_runs WHERE week = $1", week)
        assert runs == 1
    finally:
        await pool.close()


@pytest.mark.integration
async def test_the_api_catches_up_on_the_last_whole_week_and_issues_its_notice(
    settings: Settings,
) -> None:
    from tests.support import in_process_api

    week = last_whole_week(datetime.now(LOCAL_TZ))
    scheduled = settings.model_copy(update={"alerts_schedule": True, "interval_worker": False})
    db = await asyncpg.connect(settings.dsn())
    try:
        async with in_process_api(scheduled) as http:
            assert (await http.get("/livez")).status_code == 200
            for _ in range(200):
                runs = await db.fetchval(
                    "SELECT count(*) FROM analytics_runs WHERE week = $1", week
                )
                notices = await db.fetchval("SELECT count(*) FROM notices WHERE week = $1", week)
                if runs and notices:
                    break
                await asyncio.sleep(0.1)
        assert runs == 1 and notices >= 1
    finally:
        await db.close()

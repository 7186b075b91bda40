"""Ticks on the local (Asia/Shanghai) grid: the instants feeds and gateways report at.

A 15-minute interval ticks at :00, :15, :30, :45; a day ticks at local midnight.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from meterhub.logs import get_logger
from meterhub.reading import LOCAL_OFFSET_S, LOCAL_TZ
from simulators.fleet import Clock

log = get_logger(__name__)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a UTC offset it is local (Asia/Shanghai) time.

    Example: ``parse_time("2026-03-02T08:00")`` is 08:00+08:00. Raises `ValueError`.
    """
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=LOCAL_TZ)


def floor_tick(ts: datetime, interval: timedelta) -> datetime:
    """The latest tick at or before ``ts``.

    Example::

        floor_tick(datetime(2026, 3, 1, 8, 14, tzinfo=LOCAL_TZ), timedelta(minutes=15))
        # 2026-03-01 08:00+08:00
    """
    step = interval.total_seconds()
    if step <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    local = ts.timestamp() + LOCAL_OFFSET_S
    return datetime.fromtimestamp(math.floor(local / step) * step - LOCAL_OFFSET_S, LOCAL_TZ)


def history_ticks(*, until: datetime, span: timedelta, interval: timedelta) -> list[datetime]:
    """Every tick in ``[until - span, until)``, oldest first; ``until`` is floored to a tick.

    Example: a week of 15-minute ticks is 672 ticks.
    """
    end = floor_tick(until, interval)
    count = int(span / interval)
    return [end - (count - i) * interval for i in range(count)]


async def every_tick(
    interval: timedelta,
    action: Callable[[datetime], Awaitable[object]],
    *,
    clock: Clock,
    name: str,
    now_first: bool = True,
) -> None:
    """Call ``action(tick)`` at every tick from now on (first the latest past tick when
    ``now_first``); runs until cancelled. A failing action is logged and the loop goes on.
    """
    tick = floor_tick(clock(), interval)
    if not now_first:
        tick += interval
    while True:
        wait = (tick - clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            await action(tick)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("simulated feed failed at a tick", feed=name, tick=tick, error=str(exc))
        tick = max(tick + interval, floor_tick(clock(), interval))

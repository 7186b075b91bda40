"""Terminal health: online/offline after consecutive failures, clock drift, and the events
when either changes. Kept in memory by the scheduler and flushed to the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter, Gauge

from meterhub.db import Conn
from meterhub.runtime import in_slices

#: Protocols whose terminals the poll scheduler polls (their health comes from the polls;
#: the others push, and are judged by their readings).
POLLED_PROTOCOLS = frozenset({"modbus", "dlt645"})

TERMINAL_EVENTS = Counter("meterhub_terminal_events_total", "Terminal state changes", ["kind"])
OFFLINE = Gauge("meterhub_terminals_offline", "Terminals currently offline")


@dataclass(slots=True)
class _State:
    online: bool = True
    failures: int = 0
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    drift: float | None = None
    clock_checked: datetime | None = None
    clock_first: datetime | None = None  # when the first clock read is due
    drifting: bool = False
    dirty: bool = True


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    meter_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]


_UPSERT_STATUS = (
    "INSERT INTO terminal_status (meter_id, online, consecutive_failures, last_success_at, "
    "last_attempt_at, last_error, clock_drift_s, clock_checked_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) "
    "ON CONFLICT (meter_id) DO UPDATE SET online = EXCLUDED.online, "
    "consecutive_failures = EXCLUDED.consecutive_failures, "
    # a restarted collector has not seen the meter answer yet: keep the time it last did,
    # so a terminal that answered once is not "never"
    "last_success_at = coalesce(EXCLUDED.last_success_at, terminal_status.last_success_at), "
    "last_attempt_at = EXCLUDED.last_attempt_at, last_error = EXCLUDED.last_error, "
    "clock_drift_s = EXCLUDED.clock_drift_s, clock_checked_at = EXCLUDED.clock_checked_at, "
    "updated_at = now()"
)


def _status_row(meter_id: int, s: _State) -> tuple[object, ...]:
    """A row of `_UPSERT_STATUS`."""
    return (
        meter_id,
        s.online,
        s.failures,
        s.last_success,
        s.last_attempt,
        s.last_error,
        s.drift,
        s.clock_checked,
    )


def _phase(meter_id: int) -> float:
    """A point in [0, 1) per meter; consecutive ids land far apart (golden-ratio steps)."""
    return (meter_id * 0.6180339887498949) % 1.0


class TerminalBook:
    """Per-meter health. A terminal goes offline after ``offline_after`` consecutive failed
    polls and back online at the next success; each change is an event."""

    def __init__(self, *, offline_after: int = 3, drift_tolerance: timedelta) -> None:
        self._offline_after = offline_after
        self._tolerance = drift_tolerance.total_seconds()
        self._states: dict[int, _State] = {}
        self._events: list[TerminalEvent] = []

    def _state(self, meter_id: int) -> _State:
        return self._states.setdefault(meter_id, _State())

    def is_online(self, meter_id: int) -> bool:
        return self._state(meter_id).online

    def drifting(self, meter_id: int) -> bool:
        return self._state(meter_id).drifting

    def success(self, meter_id: int, at: datetime) -> None:
        state = self._state(meter_id)
        if not state.online:
            self._event(meter_id, at, "online", {"after_failures": state.failures})
        state.online, state.failures, state.last_error = True, 0, None
        state.last_success = state.last_attempt = at
        state.dirty = True

    def failure(self, meter_id: int, at: datetime, error: str) -> None:
        state = self._state(meter_id)
        state.failures += 1
        state.last_attempt, state.last_error, state.dirty = at, error, True
        if state.online and state.failures >= self._offline_after:
            state.online = False
            self._event(meter_id, at, "offline", {"failures": state.failures, "error": error})

    def clock(self, meter_id: int, *, meter_time: datetime, host_time: datetime) -> float:
        """Record a clock reading; returns the drift in seconds (meter ahead is positive)."""
        state = self._state(meter_id)
        drift = (meter_time - host_time).total_seconds()
        state.drift, state.clock_checked, state.dirty = drift, host_time, True
        beyond = abs(drift) > self._tolerance
        if beyond != state.drifting:
            self._event(
                meter_id,
                host_time,
                "clock_drift" if beyond else "clock_ok",
                {"drift_s": round(drift, 1), "tolerance_s": self._tolerance},
            )
            state.drifting = beyond
        return drift

    def clock_due(
        self, meter_id: int, now: datetime, every: timedelta, *, spread: bool = False
    ) -> bool:
        """True when the meter's clock should be read with this poll: ``every`` after the
        last read. The first read is due at once, or with ``spread`` at a point of the first
        ``every`` that is the meter's own (its id spread evenly over it), so that a collector
        that starts does not read every clock in its first cycle (two more requests a meter,
        which on a full 2400-baud bus would not fit in the minute)."""
        state = self._state(meter_id)
        if state.clock_checked is not None:
            return now - state.clock_checked >= every
        if state.clock_first is None:
            state.clock_first = now + every * _phase(meter_id) if spread else now
        return now >= state.clock_first

    def _event(self, meter_id: int, at: datetime, kind: str, detail: dict[str, Any]) -> None:
        self._events.append(TerminalEvent(meter_id, at, kind, detail))
        TERMINAL_EVENTS.labels(kind).inc()

    async def flush(self, conn: Conn) -> list[TerminalEvent]:
        """Write changed states and new events; returns the events written. If the write
        fails, they stay queued for the next flush. A state that changes while the flush
        runs is written by the next one."""
        events = list(self._events)
        dirty = [(m, s) for m, s in self._states.items() if s.dirty and s.last_attempt]
        rows = [_status_row(m, s) for m, s in dirty]
        for _, state in dirty:
            state.dirty = False
        OFFLINE.set(sum(1 for s in self._states.values() if not s.online))
        try:
            async with conn.transaction():
                async for part in in_slices(rows):  # the collector's loop runs between them
                    await conn.executemany(_UPSERT_STATUS, part)
                if events:
                    await conn.executemany(
                        "INSERT INTO terminal_events (meter_id, at, kind, detail) "
                        "VALUES ($1, $2, $3, $4::jsonb)",
                        [
                            (e.meter_id, e.at, e.kind, orjson.dumps(e.detail).decode())
                            for e in events
                        ],
                    )
        except BaseException:
            for _, state in dirty:
                state.dirty = True
            raise
        del self._events[: len(events)]
        return events

    def forget(self, meter_ids: set[int]) -> None:
        for meter_id in meter_ids:
            self._states.pop(meter_id, None)

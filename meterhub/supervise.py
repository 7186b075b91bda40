"""Background tasks that cannot fail silently.

Every long-lived task runs under a `Supervisor`: when it raises, the crash is logged once
with its cause and the task is started again after a back-off, or, for a task that cannot
be restarted safely (it held state nobody else can settle), the process exits non-zero so
that systemd restarts it. What is acknowledged is already committed or fsynced, so an exit
loses nothing. A task that returns is finished and not restarted.

Example::

    async with Supervisor() as supervisor:
        supervisor.start("interval-worker", lambda: run_interval_worker(settings, stop=stop))
        await stop.wait()
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn

from prometheus_client import Counter, Gauge

from meterhub.errors import MeterhubError
from meterhub.logs import get_logger

log = get_logger(__name__)

TASK_RESTARTS = Counter(
    "meterhub_task_restarts_total", "Supervised background tasks restarted after a crash", ["task"]
)
TASKS_DOWN = Gauge(
    "meterhub_tasks_down", "Supervised background tasks crashed and not (yet) running again"
)

#: The exit status of a process whose task could not be restarted (EX_SOFTWARE).
EXIT_TASK_FAILED = 70

Factory = Callable[[], Coroutine[Any, Any, None]]


class TaskFailedError(MeterhubError):
    """A supervised task crashed and was not restarted (raised by `Supervisor.stop`)."""

    code = "task_failed"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between restarts: ``first`` doubling up to ``most`` seconds; a task that ran
    for ``reset_after`` seconds before crashing starts again from ``first``."""

    first: float = 0.5
    most: float = 30.0
    reset_after: float = 60.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.most)


def exit_process(name: str, exc: BaseException) -> NoReturn:
    """The default for a task that cannot be restarted: exit with `EXIT_TASK_FAILED` at once
    (like a SIGKILL, which acknowledged data survives; systemd restarts the unit)."""
    log.critical("a task that cannot be restarted crashed; exiting", task=name)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_TASK_FAILED)


@dataclass(slots=True)
class TaskState:
    """What `/readyz` and the metrics say of one task."""

    name: str
    label: str
    restarts: int = 0
    restarting: bool = False
    dead: bool = False
    last_error: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def down(self) -> bool:
        return self.restarting or self.dead


class Supervisor:
    """Runs tasks, restarts the crashed ones with back-off, or calls ``on_fatal`` (by
    default `exit_process`) for those started with ``restart=False``."""

    def __init__(self, *, on_fatal: Callable[[str, BaseException], None] = exit_process) -> None:
        self._on_fatal = on_fatal
        self._states: dict[int, TaskState] = {}
        self._failed: dict[int, TaskState] = {}

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start(
        self,
        name: str,
        factory: Factory,
        *,
        restart: bool = True,
        backoff: Backoff = Backoff(),
        label: str | None = None,
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as task ``name`` (``label`` names it in metrics; give tasks of
        one kind, such as one per link, a shared label). Cancel the returned task to stop it."""
        state = TaskState(name, label or name)
        task = asyncio.create_task(self._run(state, factory, restart, backoff), name=name)
        state.task = task
        self._states[id(task)] = state
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        state = self._states.pop(id(task), None)
        if state is not None and state.down and not state.dead:
            TASKS_DOWN.dec()  # cancelled while waiting to restart

    def states(self) -> list[TaskState]:
        """The tasks running, restarting or dead (finished ones are forgotten)."""
        return [*self._states.values(), *self._failed.values()]

    def failed(self, tasks: Iterable[asyncio.Task[None]]) -> list[TaskState]:
        """Those of ``tasks`` that crashed and were not restarted."""
        return [self._failed[id(t)] for t in tasks if id(t) in self._failed]

    def raise_if_failed(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """`TaskFailedError` naming those of ``tasks`` that died."""
        if dead := self.failed(tasks):
            names = ", ".join(f"{s.name} ({s.last_error})" for s in dead)
            raise TaskFailedError(f"supervised task(s) died: {names}")

    async def stop(self) -> None:
        """Cancel every task and wait for them; `TaskFailedError` if one had died."""
        tasks = [s.task for s in self._states.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        dead = list(self._failed.values())
        if dead:
            names = ", ".join(f"{s.name} ({s.last_error})" for s in dead)
            raise TaskFailedError(f"supervised task(s) died: {names}")

    async def _run(
        self, state: TaskState, factory: Factory, restart: bool, backoff: Backoff
    ) -> None:
        delays, streak = backoff.delays(), 0
        while True:
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.last_error = f"{type(exc).__name__}: {exc}"
                if not restart:
                    self._die(state, exc)
                    return
                if time.monotonic() - started >= backoff.reset_after:
                    delays, streak = backoff.delays(), 0
                delay = next(delays)
                streak += 1
                self._log_crash(state, exc, delay=delay, first=streak == 1)
                state.restarting = True
                TASKS_DOWN.inc()
            await asyncio.sleep(delay)
            state.restarting = False
            TASKS_DOWN.dec()
            state.restarts += 1
            TASK_RESTARTS.labels(state.label).inc()

    def _log_crash(self, state: TaskState, exc: Exception, *, delay: float, first: bool) -> None:
        """The first crash in a row with its traceback, the repeats in one line each."""
        if first:
            log.error("task crashed; restarting", task=state.name, delay=delay, exc_info=exc)
        else:
            log.warning(
                "task crashed again; restarting",
                task=state.name,
                delay=delay,
                error=state.last_error,
                restarts=state.restarts,
            )

    def _die(self, state: TaskState, exc: Exception) -> None:
        log.error("task crashed and cannot be restarted", task=state.name, exc_info=exc)
        state.dead = True
        TASKS_DOWN.inc()
        assert state.task is not None
        self._failed[id(state.task)] = state
        self._on_fatal(state.name, exc)

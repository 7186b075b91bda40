"""The supervisor: a crashing task is logged and restarted with back-off; one that may not be
restarted ends the process with a non-zero status."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from meterhub.supervise import (
    EXIT_TASK_FAILED,
    TASK_RESTARTS,
    TASKS_DOWN,
    Backoff,
    Supervisor,
    TaskFailedError,
)

FAST = Backoff(first=0.01, most=0.04)


def _restarts(label: str) -> float:
    return float(TASK_RESTARTS.labels(label)._value.get())


async def test_a_task_that_raises_twice_is_restarted_and_then_runs() -> None:
    attempts: list[float] = []
    running = asyncio.Event()
    before = _restarts("flaky")

    async def flaky() -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) <= 2:
            raise RuntimeError(f"crash {len(attempts)}")
        running.set()
        await asyncio.Event().wait()  # runs until cancelled

    async with Supervisor(on_fatal=lambda name, exc: pytest.fail(f"{name} fatal")) as sup:
        sup.start("flaky", flaky, backoff=FAST)
        await asyncio.wait_for(running.wait(), 5)
        (state,) = sup.states()
        assert state.restarts == 2 and not state.down
        assert state.last_error == "RuntimeError: crash 2"
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= attempts[1] - attempts[0] >= 0.01  # backing off
    assert _restarts("flaky") - before == 2


async def test_a_task_waiting_to_restart_counts_as_down() -> None:
    gauge = TASKS_DOWN._value.get()

    async def always() -> None:
        raise ValueError("no")

    async with Supervisor() as sup:
        sup.start("always", always, backoff=Backoff(first=30))
        await asyncio.sleep(0.05)
        (state,) = sup.states()
        assert state.restarting and state.down
        assert TASKS_DOWN._value.get() == gauge + 1
    assert TASKS_DOWN._value.get() == gauge  # stopped: no longer down
    assert sup.states() == []


async def test_a_task_that_returns_is_not_restarted() -> None:
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    async with Supervisor() as sup:
        task = sup.start("once", once, backoff=FAST)
        await task
        await asyncio.sleep(0.05)
    assert calls == 1


async def test_a_task_that_may_not_restart_calls_on_fatal_and_stop_raises() -> None:
    fatal: list[tuple[str, BaseException]] = []

    async def broken() -> None:
        raise KeyError("lost state")

    sup = Supervisor(on_fatal=lambda name, exc: fatal.append((name, exc)))
    task = sup.start("batcher", broken, restart=False)
    await task
    assert [name for name, _ in fatal] == ["batcher"]
    assert isinstance(fatal[0][1], KeyError)
    (state,) = sup.states()
    assert state.dead and state.down
    with pytest.raises(TaskFailedError, match="batcher"):
        await sup.stop()
    TASKS_DOWN.dec()  # this test's dead task: leave the process gauge as it was


def test_by_default_the_process_exits_non_zero() -> None:
    program = textwrap.dedent(
        """
        import asyncio
        from meterhub.supervise import Supervisor

        async def broken():
            raise RuntimeError("cannot go on")

        async def main():
            sup = Supervisor()
            sup.start("writer", broken, restart=False)
            await asyncio.sleep(10)
            print("still running")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == EXIT_TASK_FAILED
    output = result.stdout + result.stderr
    assert "still running" not in output
    assert output.count("RuntimeError: cannot go on") == 1  # the cause, logged once

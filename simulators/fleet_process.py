"""A simulator fleet in a process of its own, as the benchmarks and tests run it.

``python -m simulators.modbus_fleet`` (or ``dlt645_fleet``) prints what it serves, one line
each, then ``ready``; it stops when its stdin closes. `fleet_process` starts one, waits for
``ready`` and stops it again on leaving.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from meterhub.errors import MeterhubError
from meterhub.settings import PROJECT_ROOT


class FleetExitedError(MeterhubError):
    code = "fleet_exited"


@dataclass
class FleetProcess:
    proc: asyncio.subprocess.Process
    #: What it printed before ``ready``.
    lines: list[str]
    #: True when it did not exit within the stop timeout and was killed.
    killed: bool = False


@asynccontextmanager
async def fleet_process(
    module: str, *args: str, ready_timeout: float = 180.0, stop_timeout: float = 30.0
) -> AsyncIterator[FleetProcess]:
    """Run ``python -m module args`` until the block ends; `FleetExitedError` if it ends
    before printing ``ready``. Its later output is read and dropped (a full pipe would
    block it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    fleet = FleetProcess(proc, [])
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(ready_timeout):
            while (line := (await proc.stdout.readline()).decode().strip()) != "ready":
                if not line:
                    raise FleetExitedError(f"{module} exited before it was ready")
                fleet.lines.append(line)
        drain = asyncio.create_task(_discard(proc.stdout))
        yield fleet
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(stop_timeout):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            fleet.killed = True
            await proc.wait()
        if drain is not None:
            await drain


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(1 << 16):
        pass

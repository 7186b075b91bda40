"""A simulator fleet in its own process, as the benchmarks run it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).parents[2]


@asynccontextmanager
async def fleet_process(module: str, *args: str) -> AsyncIterator[list[str]]:
    """Run ``python -m module args``; yield the lines it printed before ``ready``. On
    leaving, close its stdin and insist that it exits cleanly within 30 s."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines: list[str] = []
        async with asyncio.timeout(30):
            while (line := (await proc.stdout.readline()).decode().strip()) != "ready":
                assert line, "the fleet process exited early"
                lines.append(line)
        yield lines
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0

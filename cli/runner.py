"""Run a long-lived async service until SIGINT or SIGTERM, then stop it gracefully."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
import uvloop
from rich.console import Console

T = TypeVar("T")


def run_until_signalled(
    main: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, fast_loop: bool = False
) -> None:
    """``main(stop)`` runs until a signal sets ``stop``; it should then finish its work.
    ``fast_loop``: on uvloop's event loop (a service whose CPU goes to the event loop itself,
    thousands of sockets at once: the collector)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    if fast_loop:
        uvloop.run(runner())
    else:
        asyncio.run(runner())


def run_command(
    main: Coroutine[Any, Any, T], *, console: Console, errors: tuple[type[BaseException], ...]
) -> T:
    """Run one command's coroutine; an expected error (one of ``errors``) is printed as one
    line and the command exits 1, without a traceback."""
    try:
        return asyncio.run(main)
    except errors as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None

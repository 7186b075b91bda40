"""Request bodies: read with a size limit (413 beyond, before the whole body is in memory),
and heavy parsing run off the event loop so that one large upload never stalls the others.

Example::

    data = await read_limited(request, limit=MAX_SHEET_BYTES)
    sheet = await off_loop(lambda: read_sheet(data, ...), size=len(data))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import Request

from api.problems import PayloadTooLarge

T = TypeVar("T")

#: The largest sheet (CSV or XLSX) an import endpoint takes, in bytes.
MAX_SHEET_BYTES = 16 * 1024 * 1024

#: Bodies up to this many bytes are parsed on the event loop: a thread hop (~50 µs) costs
#: more than parsing them, and a parse this small never stalls the loop noticeably.
INLINE_BYTES = 128 * 1024

#: Two parsing threads at most (this service runs on small machines): a burst of large
#: bodies queues here instead of taking every thread of the default executor.
_PARSERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="meterhub-parse")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body exceeds {limit} bytes", limit=limit)


async def read_limited(request: Request, *, limit: int) -> bytes:
    """The body as sent, refused (413) past ``limit`` bytes: at once when ``Content-Length``
    says so, else as soon as the streamed bytes pass it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def off_loop(call: Callable[[], T], *, size: int) -> T:
    """``call()``, in a parsing thread when ``size`` (the input's bytes) is above
    `INLINE_BYTES`, else right here on the loop."""
    if size <= INLINE_BYTES:
        return call()
    return await asyncio.get_running_loop().run_in_executor(_PARSERS, call)

"""`meterhub import readings FILE`: months of historical CSV exports into the ingest path."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from collectors.gridfeed.codec import (
    FeedBody,
    csv_field_names,
    feed_readings,
    unknown_field_warnings,
)
from collectors.gridfeed.errors import FeedFormatError
from ingest.quarantine import Reason
from ingest.sink import IngestSink
from meterhub.db import connect
from meterhub.logs import configure_logging
from meterhub.runtime import tune_gc
from meterhub.settings import get_settings

app = typer.Typer(help="Import historical data.", no_args_is_help=True)
console = Console(stderr=True)
CHUNK = 20_000


def _chunks(raw: IO[bytes]) -> Iterator[FeedBody]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    names = csv_field_names(next(reader, []))
    chunk: list[list[str]] = []
    for row in reader:
        if row:
            chunk.append(row)
        if len(chunk) == CHUNK:
            yield FeedBody(chunk, names)
            chunk = []
    if chunk:
        yield FeedBody(chunk, names)


def _check_gzip(path: Path) -> None:
    """Read ``path`` through once, so that a cut or corrupt gzip file is refused before any
    of its rows is stored (gzip's own check is at the very end of the stream)."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except EOFError as exc:  # click would turn this into a bare "Aborted."
        raise FeedFormatError(
            "the gzip file is truncated: it ends before the gzip end-of-stream trailer; "
            "nothing was imported"
        ) from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise FeedFormatError(f"the gzip file is corrupt ({exc}); nothing was imported") from exc


@app.command("readings")
def import_readings(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV (or .csv.gz) with meter, ts and value columns"
    ),
    source: str = typer.Option("import", help="recorded as each reading's source"),
) -> None:
    """Import a historical CSV export (same columns as the grid push feed, English or Chinese
    headers; meters by their code) through the ingest path: validated, de-duplicated,
    idempotent (re-importing a file stores nothing twice), with a progress bar."""
    settings = get_settings()
    configure_logging(settings)
    tune_gc()

    async def run() -> tuple[int, int, int, int]:
        conn = await connect(settings)
        try:
            rows = await conn.fetch("SELECT code, id FROM meters")
            codes: dict[str, int] = {r["code"]: r["id"] for r in rows}
        finally:
            await conn.close()

        def resolve(code: str) -> int | Reason:
            return codes.get(code, Reason.UNKNOWN_METER)

        accepted = duplicates = conflicts = rejected = 0
        columns = [BarColumn(), DownloadColumn(), TimeRemainingColumn()]
        size = path.stat().st_size  # noqa: ASYNC240 (one stat before a long import)
        with (
            path.open("rb") as raw,
            Progress(*Progress.get_default_columns()[:1], *columns, console=console) as progress,
        ):
            task = progress.add_task(path.name, total=size)
            text = cast(IO[bytes], gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw)
            row = 0
            async with IngestSink(settings.for_process("import")) as sink:
                for chunk in _chunks(text):
                    if row == 0:
                        for warning in unknown_field_warnings(chunk):
                            console.print(f"[yellow]warning:[/] {path.name}: {warning['detail']}")
                    feed = feed_readings(chunk, codes, resolve, source=source, first_index=row + 2)
                    rejects = feed.rejects
                    result = await sink.submit(feed.readings, rejects=[r for _, r in rejects])
                    accepted += result.accepted
                    duplicates += result.duplicates
                    conflicts += result.conflicts
                    rejected += len(result.rejected) + len(rejects)
                    row += len(chunk.items)
                    progress.update(task, completed=raw.tell())
        return accepted, duplicates, conflicts, rejected

    try:
        if path.suffix == ".gz":
            _check_gzip(path)
        accepted, duplicates, conflicts, rejected = asyncio.run(run())
    except FeedFormatError as exc:
        console.print(f"[red]error:[/] {path}: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"accepted {accepted:,}, duplicates {duplicates:,}, conflicts {conflicts:,}, "
        f"rejected {rejected:,} (see the quarantine table)"
    )

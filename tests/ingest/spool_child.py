"""A producer process for the SIGKILL test: submits numbered batches, prints each ack.

Run as ``python -m tests.ingest.spool_child SPOOL_DIR DSN METER_ID...``.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from ingest.sink import IngestSink
from meterhub.logs import configure_logging
from meterhub.reading import LOCAL_TZ, Reading
from meterhub.settings import Settings

T0 = datetime(2026, 4, 1, tzinfo=LOCAL_TZ)
PER_BATCH = 50


def batch(number: int, meters: list[int]) -> list[Reading]:
    """Batch ``number``: PER_BATCH consecutive quarter-hours for every meter."""
    return [
        Reading(
            meter_id=m,
            ts=T0 + timedelta(minutes=15 * (number * PER_BATCH + i)),
            energy=float(number * PER_BATCH + i),
            source="child",
        )
        for m in meters
        for i in range(PER_BATCH)
    ]


async def main(spool: Path, dsn: str, meters: list[int]) -> None:
    settings = Settings(database_url=SecretStr(dsn), spool_dir=spool, batch_max_age=0.01)
    configure_logging(settings)
    async with IngestSink(settings) as sink:
        for number in range(10_000):
            result = await sink.submit(batch(number, meters))
            assert result.spooled
            print(f"ACK {number}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], [int(a) for a in sys.argv[3:]]))

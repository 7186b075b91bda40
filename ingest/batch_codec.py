"""Batches as spool records: pickled plain tuples, unpickled by an allow-list only.

Pickle keeps NaN, infinities and naive timestamps exactly as received, so that a reading
spooled before validation is judged on replay exactly as it would have been live.
"""

from __future__ import annotations

import io
import operator
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ingest.quarantine import QuarantineRecord, Reason
from ingest.writer import Batch
from meterhub.reading import READING_COLUMNS, Reading

_VERSION = 1
_ALLOWED: dict[tuple[str, str], Any] = {
    ("datetime", "datetime"): datetime,
    ("datetime", "timezone"): timezone,
    ("datetime", "timedelta"): timedelta,
}
_fields = operator.attrgetter(*READING_COLUMNS)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"spool record refers to {module}.{name}")
        return found


def _utc(ts: datetime | None) -> datetime | None:
    """The same instant with a fixed UTC zone, so that only datetime types get pickled."""
    return ts.astimezone(UTC) if ts is not None and ts.tzinfo is not None else ts


def _reading_fields(reading: Reading) -> tuple[Any, ...]:
    meter_id, ts, *values, quality, source = _fields(reading)
    return (meter_id, _utc(ts), *values, int(quality), source)


def encode(batch: Batch) -> bytes:
    chunks = [[_reading_fields(reading) for reading in chunk] for chunk in batch.chunks]
    rejects = [
        (r.source, str(r.reason), r.detail, r.payload, r.meter_id, _utc(r.ts))
        for r in batch.rejects
    ]
    return pickle.dumps((_VERSION, chunks, rejects), protocol=5)


def decode(payload: bytes) -> Batch:
    version, chunks, rejects = _Unpickler(io.BytesIO(payload)).load()
    if version != _VERSION:
        raise ValueError(f"spool record version {version} is not {_VERSION}")
    return Batch(
        chunks=[[Reading(*fields) for fields in chunk] for chunk in chunks],
        rejects=[
            QuarantineRecord(source, Reason(reason), detail, payload_text, meter_id, ts)
            for source, reason, detail, payload_text, meter_id, ts in rejects
        ],
    )

"""Which submit failures are worth retrying for ever, and the record of one that is not."""

from __future__ import annotations

import asyncpg
import pytest

from collectors.mqtt.poison import is_transient, poison_record
from ingest.errors import BackpressureError, SpoolFullError
from ingest.quarantine import Reason


@pytest.mark.parametrize(
    "error",
    [
        SpoolFullError("full"),
        BackpressureError("queue full"),
        OSError(28, "No space left on device"),
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.CannotConnectNowError("starting up"),
    ],
    ids=type,
)
def test_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [ValueError("bad"), KeyError("meter"), asyncpg.exceptions.DataError("no"), RuntimeError()],
    ids=type,
)
def test_permanent(error: Exception) -> None:
    assert not is_transient(error)


def test_poison_record_keeps_payload_and_reason() -> None:
    payload = '{"v": 1, "gateway": "gw-1", "readings": []}'
    record = poison_record(source="mqtt:gw-1", payload=payload, error=ValueError("x"), attempts=4)
    assert (record.source, record.reason, record.payload) == (
        "mqtt:gw-1",
        Reason.SUBMIT_FAILED,
        payload,
    )
    assert record.detail == "submit failed 4 times, last: ValueError: x"
    assert record.meter_id is None and record.ts is None

"""Transient and permanent submit failures, and the record that retires a poison message.

A submit that fails for want of a database, spool room or queue space is *transient*: the
message waits, unacknowledged, and is retried for as long as it takes. Anything else (a bug,
data the ingest path cannot handle) is *permanent*: retrying a message that fails that way
would block every later acknowledgement (acks leave in arrival order), so after
``MHUB_MQTT_POISON_ATTEMPTS`` such failures the message is quarantined as
``submit_failed`` with its raw payload and the error, and acknowledged. Pure.
"""

from __future__ import annotations

from ingest.errors import BackpressureError, SpoolFullError
from ingest.isolate import CONNECTION_ERRORS
from ingest.quarantine import QuarantineRecord, Reason

#: Submit errors that retrying cures: the database away, the spool full, the queue full.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    SpoolFullError,
    BackpressureError,
    *CONNECTION_ERRORS,
)


def is_transient(error: BaseException) -> bool:
    """True if ``error`` from ``IngestSink.submit`` is worth retrying without limit."""
    return isinstance(error, TRANSIENT_ERRORS)


def poison_record(
    *, source: str, payload: str, error: BaseException, attempts: int
) -> QuarantineRecord:
    """The quarantine record of a message whose submit failed ``attempts`` times with
    permanent errors, the last one ``error``; ``payload`` is the message as received.

    Example::

        poison_record(source="mqtt:gw-1", payload='{"v": 1, ...}',
                      error=ValueError("bad"), attempts=3).detail
        # 'submit failed 3 times, last: ValueError: bad'
    """
    detail = f"submit failed {attempts} times, last: {type(error).__name__}: {error}"
    return QuarantineRecord(source, Reason.SUBMIT_FAILED, detail, payload)

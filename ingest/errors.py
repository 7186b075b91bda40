"""The ingest path's error tree."""

from meterhub.errors import MeterhubError


class IngestError(MeterhubError):
    code = "ingest_error"


class BackpressureError(IngestError):
    """The queue is full; try again shortly (HTTP: 503 with Retry-After)."""

    code = "backpressure"


class SpoolFullError(IngestError):
    """The database is unreachable and the spool cannot take the batch: it has reached its
    size limit or its disk is full. Nothing of the batch was acknowledged (HTTP: 503 with
    Retry-After; MQTT: no PUBACK)."""

    code = "spool_full"


class SpoolWriteError(SpoolFullError):
    """The spool's disk failed a write for another reason (e.g. EIO). Like a full spool, the
    batch is not acknowledged and producers retry."""

    code = "spool_write_failed"


class SpoolInUseError(IngestError):
    """Another process holds this spool directory."""

    code = "spool_in_use"


class SinkClosedError(IngestError):
    code = "sink_closed"

"""The ingest path's error tree."""

from meterhub.errors import MeterhubError


class IngestError(MeterhubError):
    code = "ingest_error"


class BackpressureError(IngestError):
    """The queue is full; try again shortly (HTTP: 503 with Retry-After)."""

    code = "backpressure"


class SpoolFullError(IngestError):
    """The database is unreachable and the spool has reached its size limit."""

    code = "spool_full"


class SpoolInUseError(IngestError):
    """Another process holds this spool directory."""

    code = "spool_in_use"


class SinkClosedError(IngestError):
    code = "sink_closed"

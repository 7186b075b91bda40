"""The grid feed's error tree: a body that cannot be read as a whole. (A bad element is
never an error: it becomes a rejection with its index.)"""

from __future__ import annotations

from typing import Any

from collectors.errors import CollectorError


class FeedFormatError(CollectorError):
    """The body as a whole is unreadable (malformed JSON, no CSV header, corrupt gzip)."""

    code = "feed_format"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class FeedMediaTypeError(FeedFormatError):
    """A media type or content encoding the feed does not speak."""

    code = "unsupported_media_type"


class FeedTooLargeError(FeedFormatError):
    """The body, decompressed, exceeds the limit (``extra["limit"]``, bytes)."""

    code = "payload_too_large"


class MeterLookupUnavailableError(CollectorError):
    """Codes of a batch cannot be resolved: the database is away and they have not been
    looked up since the service started (HTTP: 503 with Retry-After)."""

    code = "meter_lookup_unavailable"

"""The collectors' error tree: every protocol's errors derive from `CollectorError`."""

from meterhub.errors import MeterhubError


class CollectorError(MeterhubError):
    code = "collector_error"


class TransportError(CollectorError):
    """The link to a bus, gateway or broker failed (connect, write, read)."""

    code = "transport"


class RequestTimeoutError(CollectorError):
    """A meter did not answer within the request timeout."""

    code = "timeout"

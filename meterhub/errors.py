"""The root of meterhub's error tree; each package derives its own branch from it."""


class MeterhubError(Exception):
    """Base of every error meterhub raises on purpose. ``code`` is stable and machine-readable."""

    code = "meterhub_error"


class ConfigurationError(MeterhubError):
    code = "configuration"


class DatabaseUnavailableError(MeterhubError):
    code = "database_unavailable"

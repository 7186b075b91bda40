"""The analytics' error tree."""

from meterhub.errors import MeterhubError


class AlertsError(MeterhubError):
    code = "alerts_error"


class RulebookError(AlertsError):
    """The rules file is malformed (unknown rule, missing text or parameter)."""

    code = "rulebook_invalid"


class InvalidPeriodError(AlertsError):
    """A week, month or year outside what the data and calendar allow."""

    code = "invalid_period"


class UnknownSchemeError(AlertsError):
    """No evaluation scheme with that id, or none for the year."""

    code = "unknown_scheme"

"""The analytics' error tree. ``extra`` fields reach the problem+json body."""

from typing import Any

from meterhub.errors import MeterhubError


class AlertsError(MeterhubError):
    code = "alerts_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


class RulebookError(AlertsError):
    """The rules file is malformed (unknown rule, missing text or parameter)."""

    code = "rulebook_invalid"


class InvalidPeriodError(AlertsError):
    """A week, month or year outside what the data and calendar allow."""

    code = "invalid_period"


class UnknownSchemeError(AlertsError):
    """No evaluation scheme with that id, or none for the year."""

    code = "unknown_scheme"


class CaseNotFoundError(AlertsError):
    """No notice case, or no notice, with that id or week."""

    code = "case_not_found"


class TransitionRefusedError(AlertsError):
    """The action is not allowed from the case's status for the caller's role; ``allowed``
    lists what is."""

    code = "transition_refused"


class MeteredCheckError(AlertsError):
    """Resolving needs a metered check that the data does not pass (yet)."""

    code = "metered_check_failed"


class InvalidQueryError(AlertsError):
    """A trend or analytics query whose parameters do not fit together (an end before its
    start, a scope without its id, a week that has not started)."""

    code = "invalid_query"

"""Reference-data errors: branches of the registry's tree (`registry.errors`)."""

from __future__ import annotations

from registry.errors import ConflictError, InvalidError


class MembershipOverlapError(ConflictError):
    """A firm would be on the same list twice over the same days."""

    code = "membership_overlap"


class InUseError(ConflictError):
    """A scheme that evaluations were computed with cannot be deleted."""

    code = "in_use"


class InvalidReferenceError(InvalidError):
    """A reference row that does not pass its rules (an end before its start, bad cuts)."""

    code = "invalid_reference"

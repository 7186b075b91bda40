"""What happened to the readings of one `submit` call."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.quarantine import Reason


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reading refused as good data: its position in the submitted sequence and why."""

    index: int
    reason: Reason
    detail: str


@dataclass(slots=True)
class SubmitResult:
    """Counts for one `submit`. ``spooled`` means the database was away: the readings are
    fsynced to the spool and will be validated and written when it returns, so the counts
    are not known yet."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    spooled: bool = False

"""What an export covers: the whole notice, or one town's part of it (what a town key may
download: its own items and summary, nothing of any other town)."""

from __future__ import annotations

from typing import Any

from alerts.errors import CaseNotFoundError


class UnknownTownError(CaseNotFoundError):
    """The notice has no part for that town."""

    code = "notice_town_not_found"


def _find(document: dict[str, Any], town: str) -> tuple[int, dict[str, Any]]:
    for position, part in enumerate(document["towns"], start=1):
        if part["town"] == town:
            return position, part
    raise UnknownTownError("the notice has no part for that town", town=town)


def town_position(document: dict[str, Any], town: str) -> int:
    """The town's place in the notice (1-based, the towns' own order)."""
    return _find(document, town)[0]


def town_part(document: dict[str, Any], town: str | None) -> dict[str, Any]:
    """``document`` as it stands for ``town``: the header, the town's own summary in place of
    the city's, and only its part. ``None`` is the whole notice. Sections other than these
    are left out of a town's part until they say what of them belongs to which town."""
    if town is None:
        return document
    _, part = _find(document, town)
    return {"header": document["header"], "summary": part["summary"], "towns": [part]}

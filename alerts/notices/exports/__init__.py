"""The notice's exports: pure renderers from the notice document (as stored) to bytes,
for the whole city or one town's part, and their file names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.notices.exports.html import render_html
from alerts.notices.exports.names import Kind, content_disposition, file_name
from alerts.notices.exports.scope import UnknownTownError, town_part
from alerts.notices.exports.xlsx import render_xlsx
from alerts.notices.generate import canonical


def render_json(document: dict[str, Any], town: str | None = None) -> bytes:
    """The canonical JSON text of the notice (or ``town``'s part), UTF-8."""
    return canonical(town_part(document, town)).encode("utf-8")


RENDERERS: dict[Kind, Callable[[dict[str, Any], str | None], bytes]] = {
    Kind.HTML: render_html,
    Kind.XLSX: render_xlsx,
    Kind.JSON: render_json,
}


def render(kind: Kind, document: dict[str, Any], town: str | None = None) -> bytes:
    """``document`` (or ``town``'s part of it) as a ``kind`` file."""
    return RENDERERS[kind](document, town)


__all__ = [
    "RENDERERS",
    "Kind",
    "UnknownTownError",
    "content_disposition",
    "file_name",
    "render",
    "render_html",
    "render_json",
    "render_xlsx",
    "town_part",
]

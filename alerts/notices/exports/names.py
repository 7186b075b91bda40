"""File names of the exports, safe on every OS: an ASCII name built only from the notice
itself (ISO week, revision, the town's place in the notice), and an RFC 6266 / RFC 8187
``filename*`` with the Chinese name. Nothing a caller typed is echoed: the town must be
one of the notice's own."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from alerts.notices.exports.scope import town_part, town_position


class Kind(StrEnum):
    HTML = "html"
    XLSX = "xlsx"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]


MEDIA_TYPES = {
    Kind.HTML: "text/html; charset=utf-8",
    Kind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Kind.JSON: "application/json",
}
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9-]+")
# Reserved on Windows, macOS or Linux, or meaningful to a shell or a header.
_NOT_NAME_SAFE = re.compile(r'[<>:"/\\|?*;%\'`\x00-\x1f\x7f]+')
MAX_NAME = 120


def file_name(
    kind: Kind, document: dict[str, Any], *, revision: int, town: str | None = None
) -> str:
    """``notice_2026-W48_r2.html``, or ``notice_2026-W48_r2_t04.xlsx`` for the 4th town."""
    week = _NOT_ASCII_SAFE.sub("_", str(document["header"]["iso_week"])).strip("_") or "week"
    name = f"notice_{week}_r{int(revision)}"
    if town is not None:
        name += f"_t{town_position(document, town):02d}"
    return f"{name}.{kind.value}"


def display_name(
    kind: Kind, document: dict[str, Any], *, revision: int, town: str | None = None
) -> str:
    """``义经信高耗〔2026〕第48期_第2版_江东街道.xlsx``, with anything a file system or a
    header would refuse taken out."""
    parts = [document["header"]["number"], f"第{int(revision)}版"]
    if town is not None:
        parts.append(town_part(document, town)["towns"][0]["full_name"])
    stem = unicodedata.normalize("NFC", "_".join(str(p) for p in parts))
    stem = _NOT_NAME_SAFE.sub("_", stem).strip(" ._")[:MAX_NAME] or "notice"
    return f"{stem}.{kind.value}"


def content_disposition(
    kind: Kind, document: dict[str, Any], *, revision: int, town: str | None = None
) -> str:
    """The ``Content-Disposition`` value of an export: an attachment with the ASCII name and
    the Chinese one as ``filename*``. ``document`` is the whole notice (the town's place in
    it names a town's file); an unknown ``town`` raises `UnknownTownError`.

    >>> content_disposition(Kind.XLSX, notice, revision=2, town="江东")
    'attachment; filename="notice_2026-W48_r2_t04.xlsx"; filename*=UTF-8\'\'%E4%B9%89...'
    """
    ascii_name = file_name(kind, document, revision=revision, town=town)
    utf8_name = quote(display_name(kind, document, revision=revision, town=town), safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"

"""Tables as responses: JSON (default), CSV with a UTF-8 BOM, or XLSX, chosen per request.

A route builds a `Table` (a polars frame plus a file name and optional Chinese column
headers) and returns ``render(table, fmt, meta=...)``. ``fmt`` comes from the `FormatDep`
dependency: ``?format=json|csv|xlsx`` wins, else the ``Accept`` header, else JSON.

* JSON: ``{**meta, "items": [rows]}``; timestamps as local ISO strings (``+08:00``).
* CSV: the rows only, UTF-8 with a byte-order mark so that Excel shows Chinese correctly,
  timestamps as ISO strings, as an attachment.
* XLSX: the rows only (XlsxWriter through polars), timestamps as Asia/Shanghai wall-clock
  date-times (Excel has no time zones), as an attachment.
"""

from __future__ import annotations

import enum
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import polars as pl
from fastapi import Depends, Header, Query
from fastapi.responses import Response

from meterhub.reading import LOCAL_TZ

_ZONE = str(LOCAL_TZ)
_ISO = "%Y-%m-%dT%H:%M:%S%:z"


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES: dict[Format, str] = {
    Format.JSON: "application/json",
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_BY_MEDIA = {media.split(";")[0]: fmt for fmt, media in MEDIA_TYPES.items()}


def negotiate(requested: Format | None, accept: str | None) -> Format:
    """``requested`` if given, else the best of our media types in ``accept``, else JSON."""
    if requested is not None:
        return requested
    best, best_q = Format.JSON, 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        fmt = _BY_MEDIA.get(media.lower())
        if fmt is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = fmt, q
    return best


def choose_format(
    format: Annotated[
        Format | None,
        Query(description="json (default), csv (UTF-8 with BOM) or xlsx; overrides Accept"),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Format:
    return negotiate(format, accept)


FormatDep = Annotated[Format, Depends(choose_format)]


@dataclass(frozen=True, slots=True)
class Table:
    """Rows to send: ``frame``, the download name (no extension) and Chinese headers by
    column for CSV/XLSX when asked for (`render(..., chinese=True)`)."""

    frame: pl.DataFrame
    filename: str
    labels: Mapping[str, str] = field(default_factory=dict)
    sheet: str = "data"


def _timestamps_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    aware = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(
        pl.col(n).dt.convert_time_zone(_ZONE).dt.strftime(_ISO) for n in aware
    )


def _timestamps_as_local(frame: pl.DataFrame) -> pl.DataFrame:
    aware = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(
        pl.col(n).dt.convert_time_zone(_ZONE).dt.replace_time_zone(None) for n in aware
    )


def disposition(filename: str) -> str:
    """An attachment header for ``filename``, made safe whatever went into it: letters,
    digits, ``.``, ``-`` and ``_`` only (no path separator, quote or ``..``), never a
    leading dot; the ASCII ``filename`` and the UTF-8 ``filename*``."""
    utf8_name = re.sub(r"\.{2,}", ".", re.sub(r"[^\w.-]", "_", filename)).lstrip(".") or "export"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", utf8_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(utf8_name, safe='')}"


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts (timestamps as local ISO strings)."""
    return _timestamps_as_text(frame).to_dicts()


def render(
    table: Table,
    fmt: Format,
    *,
    meta: Mapping[str, Any] | None = None,
    key: str = "items",
    chinese: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``table`` as a response in ``fmt``; ``meta`` goes only into the JSON envelope."""
    extra = dict(headers or {})
    if fmt is Format.JSON:
        body = orjson.dumps({**(meta or {}), key: json_rows(table.frame)})
        return Response(body, media_type=MEDIA_TYPES[fmt], headers=extra)
    frame = table.frame
    if chinese and table.labels:
        frame = frame.rename({k: v for k, v in table.labels.items() if k in frame.columns})
    buffer = io.BytesIO()
    if fmt is Format.CSV:
        _timestamps_as_text(frame).write_csv(buffer, include_bom=True)
    else:
        _timestamps_as_local(frame).write_excel(
            buffer,
            worksheet=table.sheet,
            autofit=True,
            float_precision=4,
            dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm"},
        )
    extra["Content-Disposition"] = disposition(f"{table.filename}.{fmt}")
    return Response(buffer.getvalue(), media_type=MEDIA_TYPES[fmt], headers=extra)


def table_responses(
    *, model: type[Any], example: Mapping[str, Any], description: str
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses={...}`` for a route answering with `render`."""
    return {
        200: {
            "description": description,
            "model": model,
            "content": {
                "application/json": {"example": example},
                "text/csv": {"schema": {"type": "string"}},
                MEDIA_TYPES[Format.XLSX]: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }

"""Sheet imports: the upload read (CSV or XLSX, at most `MAX_SHEET_BYTES`, parsed off the
event loop), the answer (200 with the counts, or 422 with every bad row), and one route per
kind of `registry.reference.kinds.KINDS`.

An import is all-or-nothing unless ``partial=true``: a sheet with a bad row answers 422
``invalid_rows`` listing every bad row, and nothing is written. With ``partial=true`` the
good rows are written and the answer is 200, the bad rows listed in ``errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel

from api.bodies import MAX_SHEET_BYTES, off_loop, read_limited
from api.deps import Bureau, PoolDep
from api.problems import (
    Forbidden,
    PayloadTooLarge,
    RowsRejected,
    Unauthorized,
    UnsupportedSheetType,
    responses,
)
from meterhub.db import Conn
from registry.imports import ImportReport
from registry.keys import Principal
from registry.reference.kinds import KINDS
from registry.sheets import XLSX_TYPES, Sheet, read_sheet

_XLSX = next(iter(XLSX_TYPES))
CSV_TYPES = frozenset({"text/csv", "application/csv"})
SHEET_TYPES = f"text/csv or {_XLSX}"
#: What every import route documents besides 200 (the app adds 401/403/422 by itself).
SHEET_RESPONSES = responses(
    Unauthorized, Forbidden, PayloadTooLarge, UnsupportedSheetType, RowsRejected
)
PARTIAL_DOC = (
    f"At most {MAX_SHEET_BYTES // 2**20} MiB (413 beyond). All-or-nothing: a bad row makes it "
    "422 `invalid_rows` with every bad row in `errors` (row number, header = 1; column; "
    "reason) and nothing written, unless `partial=true`: then the good rows are written and "
    "the answer is 200, the bad rows listed in `errors`."
)

PartialQuery = Annotated[
    bool, Query(description="write the good rows and answer 200 even if some rows are bad")
]
SheetType = Annotated[str | None, Header(description=SHEET_TYPES)]


class SheetImporter(Protocol):
    """The import of a read sheet (`registry.imports.import_firms`, a `KINDS` run...)."""

    def __call__(
        self, conn: Conn, *, principal: Principal, sheet: Sheet, partial: bool
    ) -> Awaitable[ImportReport]: ...


class ImportResult(BaseModel):
    written: bool
    created: int
    updated: int
    errors: list[dict[str, Any]]


def sheet_body(example: str) -> dict[str, Any]:
    """The ``openapi_extra`` of an import route: its body, a sheet."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "minLength": 1}, "example": example},
                _XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


def sheet_media_type(content_type: str | None) -> str:
    """The upload's media type (none: CSV); anything but CSV or XLSX is 415."""
    media_type = (content_type or "text/csv").split(";")[0].strip().lower()
    if media_type not in CSV_TYPES | XLSX_TYPES:
        raise UnsupportedSheetType(
            f"{media_type!r} is no sheet: send text/csv or {_XLSX}",
            accepted=sorted(CSV_TYPES | XLSX_TYPES),
        )
    return media_type


async def read_upload(
    request: Request, content_type: str | None, columns: Mapping[str, str]
) -> Sheet:
    """The body as a sheet whose header names ``columns`` (a header -> field map)."""
    media_type = sheet_media_type(content_type)
    data = await read_limited(request, limit=MAX_SHEET_BYTES)
    fields = set(columns.values())
    # XLSX is unzipped and parsed, CSV decoded: both are CPU work off the loop when large.
    return await off_loop(
        lambda: read_sheet(data, media_type, aliases=columns, fields=fields), size=len(data)
    )


def answer(report: ImportReport) -> ImportResult:
    """The 200 answer, or 422 when bad rows kept the sheet from being written."""
    if not report.written:
        raise RowsRejected(
            f"{len(report.errors)} bad row(s); nothing was written (partial=true writes the "
            "good rows)",
            written=False,
            created=0,
            updated=0,
            errors=report.errors,
        )
    return ImportResult(
        written=report.written, created=report.created, updated=report.updated, errors=report.errors
    )


def add_sheet_import(
    router: APIRouter,
    path: str,
    *,
    run: SheetImporter,
    columns: Mapping[str, str],
    name: str,
    summary: str,
    description: str,
    example: str,
) -> None:
    """Register ``POST path`` (a bureau key's): read the body as a sheet whose header names
    ``columns`` (`read_upload`) and import it with ``run``, answering with the counts and
    every bad row (`answer`). ``name`` makes the operation id."""

    async def import_sheet(
        request: Request,
        principal: Bureau,
        pool: PoolDep,
        partial: PartialQuery = False,
        content_type: SheetType = None,
    ) -> ImportResult:
        sheet = await read_upload(request, content_type, columns)
        async with pool.acquire() as conn:
            report = await run(conn, principal=principal, sheet=sheet, partial=partial)
        return answer(report)

    router.add_api_route(
        path,
        import_sheet,
        methods=["POST"],
        summary=summary,
        description=description,
        responses=SHEET_RESPONSES,
        openapi_extra=sheet_body(example),
        name=name,
    )


def add_import(router: APIRouter, path: str, *, kind: str, summary: str, example: str) -> None:
    """Register ``POST path``: import a sheet of ``kind`` (all-or-nothing unless
    ``partial=true``), answering with the counts and every bad row."""
    spec = KINDS[kind]
    headers = ", ".join(
        f"{field} ({'/'.join(h for h, f in spec.columns.items() if f == field) or '-'})"
        for field in sorted(spec.fields)
    )
    add_sheet_import(
        router,
        path,
        run=spec.run,
        columns=spec.columns,
        name=f"import_{kind.replace('-', '_')}",
        summary=summary,
        description=f"Body: the sheet ({SHEET_TYPES}); the header row names the columns "
        f"by field or Chinese header: {headers}. {PARTIAL_DOC} Audited. "
        "Columns and values: docs/import.md.",
        example=example,
    )

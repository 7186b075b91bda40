"""Sheet-import endpoints for the reference data and firm attributes: one route per kind of
`registry.reference.kinds.KINDS`, the body the sheet itself."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from api.deps import Bureau, PoolDep
from api.problems import Forbidden, InvalidRequest, Unauthorized, responses
from api.routes.firms import ImportResult, _sheet
from registry.reference.kinds import KINDS
from registry.sheets import XLSX_TYPES

_XLSX = next(iter(XLSX_TYPES))


def _body(example: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": example},
                _XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


def add_import(router: APIRouter, path: str, *, kind: str, summary: str, example: str) -> None:
    """Register ``POST path``: import a sheet of ``kind`` (all-or-nothing unless
    ``partial=true``), answering with the counts and every bad row."""
    spec = KINDS[kind]
    headers = ", ".join(
        f"{field} ({'/'.join(h for h, f in spec.columns.items() if f == field) or '-'})"
        for field in sorted(spec.fields)
    )

    async def run(
        request: Request,
        principal: Bureau,
        pool: PoolDep,
        partial: Annotated[
            bool, Query(description="write the good rows even if some are bad")
        ] = False,
        content_type: Annotated[str | None, Header(description="text/csv or the XLSX type")] = None,
    ) -> ImportResult:
        sheet = await _sheet(request, content_type, spec.columns)
        async with pool.acquire() as conn:
            report = await spec.run(conn, principal=principal, sheet=sheet, partial=partial)
        return ImportResult(
            written=report.written,
            created=report.created,
            updated=report.updated,
            errors=report.errors,
        )

    router.add_api_route(
        path,
        run,
        methods=["POST"],
        summary=summary,
        description=f"Body: the sheet (text/csv or {_XLSX}); the header row names the columns "
        f"by field or Chinese header: {headers}. All-or-nothing unless `partial=true`; every "
        "bad row is reported by row number (header = 1) with its column and reason. Audited. "
        "Columns and values: docs/import.md.",
        responses=responses(Unauthorized, Forbidden, InvalidRequest),
        openapi_extra=_body(example),
        name=f"import_{kind.replace('-', '_')}",
    )

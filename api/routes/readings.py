"""The grid company's push feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from api.deps import RETRY_AFTER_DATABASE, Grid, OptionalPoolDep, SinkDep
from api.problems import (
    Busy,
    InvalidBody,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    responses,
)
from api.problems import Forbidden as _Forbidden
from api.problems import Unauthorized as _Unauthorized
from collectors.gridfeed.codec import (
    MAX_BODY_BYTES,
    FeedBody,
    feed_readings,
    split_body,
    unknown_field_warnings,
)
from collectors.gridfeed.errors import MeterLookupUnavailableError
from collectors.gridfeed.meters import FeedMeters
from ingest.errors import BackpressureError, SpoolFullError
from ingest.outcome import Rejection, SubmitResult

router = APIRouter(prefix="/v1/readings", tags=["grid feed"])

_EXAMPLE = [
    {
        "meter": "330782-0001",
        "ts": "2026-03-02T08:15:00+08:00",
        "energy": 1206.42,
        "energy_sharp": 120.1,
        "energy_peak": 480.2,
        "energy_flat": 360.0,
        "energy_valley": 246.12,
        "power": 35.2,
        "voltage_a": 230.1,
        "current_a": 51.3,
        "power_factor": 0.95,
    },
]

_CSV_EXAMPLE = "表号,抄表时间,正向有功总电量\n330782-0001,2026-03-02T08:15:00+08:00,1206.42\n"


async def _read_body(request: Request) -> bytes:
    """The body as sent (still compressed), refused past `MAX_BODY_BYTES` as it streams."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def _response(body: FeedBody, result: SubmitResult, rejections: list[Rejection]) -> dict[str, Any]:
    return {
        "warnings": unknown_field_warnings(body),
        "received": len(body.items),
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "conflicts": result.conflicts,
        "rejected": len(rejections),
        "spooled": result.spooled,
        "rejections": [
            {"index": r.index, "reason": str(r.reason), "detail": r.detail}
            for r in sorted(rejections, key=lambda r: r.index)
        ],
    }


@router.post(
    "",
    status_code=202,
    summary="Push a batch of meter readings",
    description=(
        "A JSON array, NDJSON (`application/x-ndjson`) or CSV (`text/csv`, English or Chinese "
        "headers such as 表号, 抄表时间, 正向有功总电量) of readings, optionally gzip-compressed "
        f"(`Content-Encoding: gzip`), at most {MAX_BODY_BYTES // 2**20} MiB decompressed. "
        "Timestamps are the meter's time with a UTC offset. Valid readings are stored even "
        "when others in the batch are bad; each rejected one is listed with its index and "
        "reason and kept in quarantine. A column (or JSON key) that is no reading field is "
        "ignored and listed in `warnings` (code `unknown_field`). Re-sending a batch stores "
        "nothing twice. Answers 202 once the readings are durable (committed, or spooled "
        "while the database is away)."
    ),
    responses={
        202: {"description": "Counts of what happened to the batch"},
        **responses(
            InvalidBody, _Unauthorized, _Forbidden, PayloadTooLarge, UnsupportedMediaType, Busy
        ),
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"example": _EXAMPLE},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": _CSV_EXAMPLE,
                },
            },
            "required": True,
        }
    },
)
async def push_readings(
    request: Request,
    principal: Grid,
    pool: OptionalPoolDep,
    sink: SinkDep,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    # An unreadable body raises the codec's errors, which api.problems maps (400/413/415).
    body = await _read_body(request)
    feed_body = split_body(body, _media_type(content_type), encoding=content_encoding)
    source = f"grid:{principal.scope}"
    meters: FeedMeters = request.app.state.feed_meters
    try:
        resolve = await meters.resolver(pool, feed=principal.scope or "", codes=feed_body.codes())
    except MeterLookupUnavailableError as exc:
        raise Unavailable(str(exc), headers={"Retry-After": RETRY_AFTER_DATABASE}) from exc
    feed = feed_readings(feed_body, resolve.ids, resolve, source=source)
    readings, indices, rejects = feed.readings, feed.indices, feed.rejects
    try:
        result = await sink.try_submit(readings, rejects=[record for _, record in rejects])
    except BackpressureError as exc:
        raise Busy(str(exc), headers={"Retry-After": "2"}) from exc
    except SpoolFullError as exc:
        raise Unavailable(str(exc), headers={"Retry-After": "30"}) from exc
    rejections = [Rejection(indices[r.index], r.reason, r.detail) for r in result.rejected]
    rejections += [Rejection(index, rec.reason, rec.detail) for index, rec in rejects]
    return JSONResponse(_response(feed_body, result, rejections), status_code=202)

"""The grid company's push feed."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.bodies import off_loop, read_limited
from api.deps import RETRY_AFTER_DATABASE, Grid, OptionalPoolDep, SinkDep
from api.problems import (
    Busy,
    InvalidBody,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    UnsupportedMediaType,
    responses,
)
from api.problems import Forbidden as _Forbidden
from api.problems import Unauthorized as _Unauthorized
from api.quota import PushQuota, QuotaExceededError
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
from ingest.quarantine import Reason
from meterhub.reading import VALUE_FIELDS
from meterhub.settings import Settings

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

#: About what one element weighs in a body, to tell a large batch (parsed off the loop).
_BYTES_PER_ELEMENT = 100

_CSV_EXAMPLE = "表号,抄表时间,正向有功总电量\n330782-0001,2026-03-02T08:15:00+08:00,1206.42\n"


#: The element schema of a JSON (or NDJSON) body: what a well-formed reading looks like.
#: Elements that do not match are refused one by one (listed in ``rejections``), not the body.
READING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["meter", "ts"],
    "properties": {
        "meter": {"type": "string", "minLength": 1, "description": "the meter's code"},
        "ts": {
            "type": "string",
            "format": "date-time",
            "description": "the meter's time with a UTC offset",
        },
        **{name: {"type": ["number", "null"]} for name in VALUE_FIELDS},
        "quality": {"type": "integer", "minimum": 0, "maximum": 32767, "default": 0},
    },
    "minProperties": 3,
    "description": "a reading: meter, ts and at least one value (else `no_values`); another "
    "key is ignored and reported in `warnings`",
}


class PushRejection(BaseModel):
    index: int
    reason: Reason
    detail: str | None


class PushWarning(BaseModel):
    code: str
    field: str
    detail: str


class PushResult(BaseModel):
    """What happened to each element of the batch: ``received`` = ``accepted`` +
    ``duplicates`` + ``conflicts`` + ``rejected``."""

    warnings: list[PushWarning]
    received: int
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    spooled: bool
    rejections: list[PushRejection]


def get_quota(request: Request) -> PushQuota:
    """The app's push quota, made on first use from the settings."""
    quota: PushQuota | None = getattr(request.app.state, "push_quota", None)
    if quota is None:
        settings: Settings = request.app.state.settings
        quota = PushQuota(rate=settings.push_rate_per_key, burst=settings.push_burst)
        request.app.state.push_quota = quota
    return quota


def _limited(exc: QuotaExceededError) -> TooManyRequests:
    return TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after)})


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
        f"(`Content-Encoding: gzip`), at most {MAX_BODY_BYTES // 2**20} MiB as sent and "
        "decompressed (413 beyond); a gzip body that does not end with its trailer is "
        "refused whole (400, nothing stored). "
        "Timestamps are the meter's time with a UTC offset. Valid readings are stored even "
        "when others in the batch are bad; each rejected one is listed with its index and "
        "reason and kept in quarantine. A column (or JSON key) that is no reading field is "
        "ignored and listed in `warnings` (code `unknown_field`). Re-sending a batch stores "
        "nothing twice. Answers 202 once the readings are durable (committed, or spooled "
        "while the database is away). Quota: each grid key may push "
        "`MHUB_PUSH_RATE_PER_KEY` readings a second on average (default 20,000) and "
        "`MHUB_PUSH_BURST` at once (default 200,000); beyond, 429 with `Retry-After`."
    ),
    responses={
        202: {"description": "Counts of what happened to the batch", "model": PushResult},
        **responses(
            InvalidBody,
            _Unauthorized,
            _Forbidden,
            PayloadTooLarge,
            UnsupportedMediaType,
            TooManyRequests,
            Busy,
        ),
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": READING_SCHEMA},
                    "example": _EXAMPLE,
                },
                "application/x-ndjson": {
                    "schema": {
                        "type": "string",
                        "description": "one reading object (as in the JSON array) per line",
                    },
                    "example": "\n".join(orjson.dumps(r).decode() for r in _EXAMPLE) + "\n",
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "a header row naming the fields (meter and ts at "
                        "least; English names or the grid company's Chinese headers), then "
                        "one reading per row; UTF-8 or GB18030",
                    },
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
    quota: Annotated[PushQuota, Depends(get_quota)],
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    try:
        quota.check(principal.key_id)  # an empty bucket: refused before the body is read
    except QuotaExceededError as exc:
        raise _limited(exc) from None
    # An unreadable body raises the codec's errors, which api.problems maps (400/413/415).
    body = await read_limited(request, limit=MAX_BODY_BYTES)
    media_type, encoding = _media_type(content_type), content_encoding
    # A compressed body inflates to many times its size: it always counts as a large one.
    work = len(body) * (1 if encoding in (None, "identity") else 64)
    feed_body = await off_loop(lambda: split_body(body, media_type, encoding=encoding), size=work)
    try:
        quota.take(principal.key_id, len(feed_body.items))
    except QuotaExceededError as exc:
        raise _limited(exc) from None
    source = f"grid:{principal.scope}"
    meters: FeedMeters = request.app.state.feed_meters
    try:
        resolve = await meters.resolver(pool, feed=principal.scope or "", codes=feed_body.codes())
    except MeterLookupUnavailableError as exc:
        raise Unavailable(str(exc), headers={"Retry-After": RETRY_AFTER_DATABASE}) from exc
    feed = await off_loop(
        lambda: feed_readings(feed_body, resolve.ids, resolve, source=source),
        size=len(feed_body.items) * _BYTES_PER_ELEMENT,
    )
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

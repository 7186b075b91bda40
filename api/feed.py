"""The grid company's push feed: bodies (JSON array, NDJSON, CSV) into readings.

Pure functions: parsing never raises for bad rows; each bad row becomes a rejection with
its index and reason, and the good rows go on. Only an unparseable body as a whole is an
error (`FeedFormatError`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ingest.quarantine import QuarantineRecord, Reason
from meterhub.errors import MeterhubError
from meterhub.reading import VALUE_FIELDS, Reading

#: CSV headers accepted besides the English field names (the grid company's exports).
CSV_ALIASES: dict[str, str] = {
    "表号": "meter",
    "电表编号": "meter",
    "计量点编号": "meter",
    "meter_code": "meter",
    "时间": "ts",
    "抄表时间": "ts",
    "数据时间": "ts",
    "timestamp": "ts",
    "正向有功总电量": "energy",
    "正向有功总": "energy",
    "有功总电量": "energy",
    "尖": "energy_sharp",
    "尖电量": "energy_sharp",
    "峰": "energy_peak",
    "峰电量": "energy_peak",
    "平": "energy_flat",
    "平电量": "energy_flat",
    "谷": "energy_valley",
    "谷电量": "energy_valley",
    "有功功率": "power",
    "总有功功率": "power",
    "A相电压": "voltage_a",
    "B相电压": "voltage_b",
    "C相电压": "voltage_c",
    "A相电流": "current_a",
    "B相电流": "current_b",
    "C相电流": "current_c",
    "功率因数": "power_factor",
    "质量": "quality",
}
_NUMERIC = frozenset(VALUE_FIELDS)


class FeedFormatError(MeterhubError):
    code = "feed_format"


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A syntactically valid row: the meter's code and its reading values."""

    index: int
    meter: str
    ts: datetime
    values: dict[str, float]
    quality: int


@dataclass(slots=True)
class ParsedFeed:
    rows: list[FeedRow]
    rejects: list[tuple[int, QuarantineRecord]]
    total: int


def parse_body(body: bytes, media_type: str, *, source: str) -> ParsedFeed:
    """Parse a whole push body by its media type."""
    if media_type in ("application/json", ""):
        items = _json_array(body)
    elif media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        items = _ndjson(body)
    elif media_type in ("text/csv", "application/csv"):
        items = _csv(body)
    else:
        raise FeedFormatError(f"unsupported media type {media_type!r}")
    return parse_items(items, source=source)


def _json_array(body: bytes) -> list[Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FeedFormatError(f"malformed JSON: {exc}") from exc
    if not isinstance(data, list):
        raise FeedFormatError("the body must be a JSON array of readings")
    return data


def _ndjson(body: bytes) -> list[Any]:
    items: list[Any] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            items.append(_Unparsed(line.decode("utf-8", "replace")))
    return items


def _csv(body: bytes) -> list[Any]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = body.decode("gb18030")  # exports from Chinese Excel
        except UnicodeDecodeError as exc:
            raise FeedFormatError("CSV must be UTF-8 or GB18030 text") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise FeedFormatError("the CSV body is empty")
    names = csv_field_names(header)
    return [{n: v for n, v in zip(names, row, strict=False) if v != ""} for row in reader if row]


def csv_field_names(header: list[str]) -> list[str]:
    """Field names for a CSV header (English names or the grid company's Chinese ones)."""
    names = [
        CSV_ALIASES.get(h.strip().lstrip("\ufeff"), h.strip().lstrip("\ufeff")) for h in header
    ]
    if "meter" not in names or "ts" not in names:
        raise FeedFormatError("the CSV header needs a meter column and a ts column")
    return names


@dataclass(frozen=True, slots=True)
class _Unparsed:
    text: str


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    return number


def _row(index: int, item: Any, stamps: dict[str, datetime]) -> FeedRow:
    """One element; ``stamps`` caches parsed timestamps (a batch repeats them per meter)."""
    if type(item) is not dict:
        raise TypeError(f"element must be an object, not {type(item).__name__}")
    meter, ts_text = item.get("meter"), item.get("ts")
    if meter is None or ts_text is None:
        raise KeyError("meter" if meter is None else "ts")
    if not isinstance(meter, str | int) or isinstance(meter, bool):
        raise TypeError("meter must be a string")
    if not isinstance(ts_text, str):
        raise TypeError("ts must be an ISO 8601 string with a UTC offset")
    ts = stamps.get(ts_text)
    if ts is None:
        ts = stamps[ts_text] = datetime.fromisoformat(ts_text)
    values: dict[str, float] = {}
    for key, value in item.items():
        if key in _NUMERIC and value is not None:
            kind = type(value)  # exact types first: the common case, and bool is not int here
            values[key] = (
                value if kind is float else float(value) if kind is int else (_number(key, value))
            )
    quality = item.get("quality", 0)
    if isinstance(quality, bool) or not isinstance(quality, int | str):
        raise TypeError("quality must be an integer")
    return FeedRow(index, str(meter), ts, values, int(quality))


def _reject(index: int, item: Any, reason: Reason, detail: str, source: str) -> QuarantineRecord:
    raw = (
        item.text
        if isinstance(item, _Unparsed)
        else orjson.dumps(item, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    )
    return QuarantineRecord(source=source, reason=reason, detail=f"[{index}] {detail}", payload=raw)


def parse_items(items: Iterable[Any], *, source: str, start: int = 0) -> ParsedFeed:
    """Rows (dicts) into feed rows and rejections; indices count from ``start``."""
    parsed = ParsedFeed([], [], 0)
    stamps: dict[str, datetime] = {}
    for index, item in enumerate(items, start):
        parsed.total += 1
        if isinstance(item, _Unparsed):
            parsed.rejects.append(
                (index, _reject(index, item, Reason.MALFORMED_PAYLOAD, "line is not JSON", source))
            )
            continue
        try:
            parsed.rows.append(_row(index, item, stamps))
        except KeyError as exc:
            parsed.rejects.append(
                (
                    index,
                    _reject(index, item, Reason.MISSING_FIELD, f"missing {exc.args[0]}", source),
                )
            )
        except (TypeError, ValueError) as exc:
            parsed.rejects.append(
                (index, _reject(index, item, Reason.WRONG_TYPE, str(exc), source))
            )
    return parsed


def to_readings(
    parsed: ParsedFeed,
    resolve: Callable[[str], int | Reason],
    *,
    source: str,
) -> tuple[list[Reading], list[int], list[tuple[int, QuarantineRecord]]]:
    """Readings for rows whose meter resolves (with their request indices), and rejections
    for rows whose meter is unknown or outside the caller's feed."""
    readings: list[Reading] = []
    indices: list[int] = []
    rejects = list(parsed.rejects)
    for row in parsed.rows:
        meter = resolve(row.meter)
        if isinstance(meter, Reason):
            detail = f"meter {row.meter!r} " + (
                "is not registered" if meter is Reason.UNKNOWN_METER else "is not in your feed"
            )
            record = QuarantineRecord(
                source=source,
                reason=meter,
                detail=f"[{row.index}] {detail}",
                payload=orjson.dumps(
                    {"meter": row.meter, "ts": row.ts.isoformat(), **_finite(row.values)}
                ).decode(),
                ts=row.ts if row.ts.tzinfo else None,
            )
            rejects.append((row.index, record))
            continue
        readings.append(
            Reading(meter_id=meter, ts=row.ts, quality=row.quality, source=source, **row.values)
        )
        indices.append(row.index)
    return readings, indices, rejects


def _finite(values: dict[str, float]) -> dict[str, float | str]:
    return {k: v if math.isfinite(v) else str(v) for k, v in values.items()}

"""The careful path of the grid feed codec: each element checked on its own, every problem
a rejection with its index and reason (`collectors.gridfeed.codec` sends here what its fast
path cannot take as it is; nothing here calls back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ingest.quarantine import QuarantineRecord, Reason
from meterhub.reading import VALUE_FIELDS, Reading

_NUMERIC = frozenset(VALUE_FIELDS)


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


class Stamps(dict[str, datetime]):
    """ISO 8601 text -> datetime, parsed once per distinct text (a batch repeats them)."""

    def __missing__(self, text: str) -> datetime:
        ts = self[text] = datetime.fromisoformat(text)  # TypeError/ValueError: the caller's
        return ts


@dataclass(frozen=True, slots=True)
class Unparsed:
    """An NDJSON line that is not JSON."""

    text: str


def _number(name: str, value: Any, *, text: bool) -> float:
    """A JSON number, or (``text``: a CSV cell) a string holding one."""
    allowed = (int, float, str) if text else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _row(index: int, item: Any, stamps: Stamps, *, text: bool) -> FeedRow:
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
    ts = stamps[ts_text]
    values: dict[str, float] = {}
    for key, value in item.items():
        if key in _NUMERIC and value is not None:
            kind = type(value)  # exact types first: the common case, and bool is not int here
            values[key] = (
                value
                if kind is float
                else float(value)
                if kind is int
                else _number(key, value, text=text)
            )
    quality = item.get("quality", 0)
    if isinstance(quality, bool) or not isinstance(quality, (int, str) if text else int):
        raise TypeError("quality must be an integer")
    return FeedRow(index, str(meter), ts, values, int(quality))


def _reject(index: int, item: Any, reason: Reason, detail: str, source: str) -> QuarantineRecord:
    raw = (
        item.text
        if isinstance(item, Unparsed)
        else orjson.dumps(item, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    )
    return QuarantineRecord(source=source, reason=reason, detail=f"[{index}] {detail}", payload=raw)


def parse_items(items: Iterable[tuple[int, Any]], *, source: str, text: bool = False) -> ParsedFeed:
    """``(index, element)`` pairs into feed rows and rejections. ``text``: the elements are
    CSV rows (dicts of strings), whose numbers are strings."""
    parsed = ParsedFeed([], [], 0)
    stamps = Stamps()
    for index, item in items:
        parsed.total += 1
        if isinstance(item, Unparsed):
            parsed.rejects.append(
                (index, _reject(index, item, Reason.MALFORMED_PAYLOAD, "line is not JSON", source))
            )
            continue
        try:
            parsed.rows.append(_row(index, item, stamps, text=text))
        except KeyError as exc:
            detail = f"missing {exc.args[0]}"
            parsed.rejects.append(
                (index, _reject(index, item, Reason.MISSING_FIELD, detail, source))
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

"""The grid feed codec: a pushed body (JSON array, NDJSON or CSV, optionally gzip) into
readings and per-element rejections. Pure: no HTTP, no database.

One direction: bytes are decompressed and split into elements (`split_body`), then
`feed_readings` turns them into readings. The plainly well-formed elements of known meters
become readings directly (the fast path, one dictionary or list lookup per field); the
others take the careful path (`collectors.gridfeed.careful`), which gives each bad one a
rejection with its index and reason. Value types the fast path passes on (a string where
a JSON number belongs, ``true``) are quarantined by the ingest path as ``wrong_type``.
Only a body unreadable as a whole is an error (`FeedFormatError` and its subclasses).

Example::

    body = split_body(data, "text/csv", encoding="gzip")
    resolver = await feed_meters.resolver(pool, feed="sgcc-yiwu", codes=body.codes())
    out = feed_readings(body, resolver.ids, resolver, source="grid:sgcc-yiwu")
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collectors.gridfeed.careful import Stamps, Unparsed, parse_items, to_readings
from collectors.gridfeed.errors import FeedFormatError, FeedMediaTypeError, FeedTooLargeError
from ingest.quarantine import QuarantineRecord, Reason
from meterhub.reading import VALUE_FIELDS, Reading

#: Bodies above this many bytes (after decompression) are refused (`FeedTooLargeError`).
MAX_BODY_BYTES = 64 * 1024 * 1024

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


#: The fields an element may carry; any other is reported (`FeedBody.unknown_fields`).
FIELDS = frozenset({"meter", "ts", "quality", *VALUE_FIELDS})


@dataclass(slots=True)
class FeedBody:
    """A body's elements: JSON values (`Unparsed` for a bad NDJSON line), or CSV rows (lists
    of strings) with the field name of each column."""

    items: list[Any]
    names: list[str] | None = None

    @property
    def is_csv(self) -> bool:
        return self.names is not None

    def codes(self) -> set[str]:
        """The meter codes named by the elements (ill-formed ones aside)."""
        if self.names is not None:
            at = self.names.index("meter")
            return {row[at] for row in self.items if len(row) > at}
        return {
            str(item["meter"])
            for item in self.items
            if type(item) is dict and type(item.get("meter")) in (str, int)
        }

    def unknown_fields(self) -> list[str]:
        """The CSV columns (or JSON keys, over all elements) that are no reading field:
        their values are not stored, and the caller should hear of it."""
        names: set[str] = set()
        if self.names is not None:
            names.update(self.names)
        else:
            for item in self.items:
                if type(item) is dict:
                    names.update(item)
        return sorted(str(name) for name in names - FIELDS)

    def element(self, index: int) -> Any:
        """Element ``index`` as the careful path takes it (a CSV row as a dict)."""
        item = self.items[index]
        if self.names is None:
            return item
        return {n: v for n, v in zip(self.names, item, strict=False) if v != ""}


def split_body(
    body: bytes, media_type: str, *, encoding: str | None = None, limit: int = MAX_BODY_BYTES
) -> FeedBody:
    """Split a whole push body by its media type (``""``: JSON), after undoing its content
    ``encoding`` (None, ``identity`` or ``gzip``); at most ``limit`` bytes decompressed."""
    body = _decoded(body, encoding, limit)
    if media_type in ("application/json", ""):
        return FeedBody(_json_array(body))
    if media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        return FeedBody(_ndjson(body))
    if media_type in ("text/csv", "application/csv"):
        names, rows = _csv(body)
        return FeedBody(rows, names)
    raise FeedMediaTypeError(f"unsupported media type {media_type!r}")


def _decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` without its content encoding; never inflates more than ``limit + 1`` bytes."""
    if encoding in (None, "identity"):
        data, more = body, False
    elif encoding == "gzip":
        data, more = _gunzip(body, limit)
    else:
        raise FeedMediaTypeError(f"Content-Encoding {encoding!r}: use gzip or none")
    if more or len(data) > limit:
        raise FeedTooLargeError(f"the body exceeds {limit} bytes", limit=limit)
    return data


def _gunzip(body: bytes, limit: int) -> tuple[bytes, bool]:
    """``body`` inflated (every gzip member of it), and whether more than ``limit`` bytes
    were left; a stream that stops before its end-of-stream trailer (a cut body) is an error,
    so that no part of it is stored."""
    parts: list[bytes] = []
    size, rest = 0, body
    while True:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            part = inflate.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise FeedFormatError(f"the gzip body is corrupt: {exc}") from exc
        parts.append(part)
        size += len(part)
        if inflate.unconsumed_tail or size > limit:
            return b"".join(parts), True
        if not inflate.eof:
            raise FeedFormatError(
                "the gzip body is truncated: it ends before the gzip end-of-stream trailer "
                "(CRC and length); nothing was stored, send the whole body again"
            )
        rest = inflate.unused_data
        if not rest.strip(b"\0"):  # trailing NUL padding is tolerated, as gzip(1) does
            return b"".join(parts), False


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
            items.append(Unparsed(line.decode("utf-8", "replace")))
    return items


def _csv(body: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = body.decode("gb18030")  # exports from Chinese Excel
        except UnicodeDecodeError as exc:
            raise FeedFormatError("CSV must be UTF-8 or GB18030 text") from exc
    reader = csv.reader(io.StringIO(text, newline=""))  # a CR inside a cell is the cell's
    try:
        header = next(reader, None)
        if header is None:
            raise FeedFormatError("the CSV body is empty")
        return csv_field_names(header), [row for row in reader if row]
    except csv.Error as exc:
        raise FeedFormatError(f"the CSV cannot be read: {exc}") from exc


def csv_field_names(header: list[str]) -> list[str]:
    """Field names for a CSV header (English names or the grid company's Chinese ones)."""
    names = [
        CSV_ALIASES.get(h.strip().lstrip("\ufeff"), h.strip().lstrip("\ufeff")) for h in header
    ]
    if "meter" not in names or "ts" not in names:
        raise FeedFormatError("the CSV header needs a meter column and a ts column")
    return names


def unknown_field_warnings(body: FeedBody) -> list[dict[str, str]]:
    """A warning per unknown field of ``body``, for the caller's answer."""
    known = ", ".join(sorted(FIELDS))
    return [
        {
            "code": "unknown_field",
            "field": name,
            "detail": f"{name!r} is no reading field (known: {known}); its values were not stored",
        }
        for name in body.unknown_fields()
    ]


@dataclass(slots=True)
class FeedReadings:
    """Readings with the element index of each, and the rejections (index, record)."""

    readings: list[Reading] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    rejects: list[tuple[int, QuarantineRecord]] = field(default_factory=list)


def feed_readings(
    body: FeedBody,
    ids: Mapping[str, int],
    resolve: Callable[[str], int | Reason],
    *,
    source: str,
    first_index: int = 0,
) -> FeedReadings:
    """Every element as a reading or a rejection. ``ids`` are the meter codes this caller
    may push (code -> meter id); ``resolve`` says why another code is refused. Indices
    count from ``first_index``."""
    fast, slow = convert(body, ids, source=source)
    parsed = parse_items(((i, body.element(i)) for i in slow), source=source, text=body.is_csv)
    readings, indices, rejects = to_readings(parsed, resolve, source=source)
    fast.readings += readings
    fast.indices += indices
    fast.rejects = rejects
    if first_index:
        fast.indices = [i + first_index for i in fast.indices]
        fast.rejects = [(i + first_index, record) for i, record in fast.rejects]
    return fast


def convert(
    body: FeedBody, ids: Mapping[str, int], *, source: str
) -> tuple[FeedReadings, list[int]]:
    """The fast path: readings for the plainly well-formed elements of meters in ``ids``,
    and the indices of the other elements."""
    stamps = Stamps()
    if body.names is not None:
        reading_of = _csv_rows(body.names, ids, stamps, source)
    else:
        reading_of = _json_elements(ids, stamps, source)
    out, slow = FeedReadings(), []
    readings, indices = out.readings, out.indices
    for index, item in enumerate(body.items):
        try:
            reading = reading_of(item)
        except Exception:  # anything odd: the careful path says what
            slow.append(index)
            continue
        readings.append(reading)
        indices.append(index)
    return out, slow


def _json_elements(ids: Mapping[str, int], stamps: Stamps, source: str) -> Callable[[Any], Reading]:
    make = Reading._make

    def reading_of(item: Any) -> Reading:
        if type(item) is not dict:
            raise TypeError
        get = item.get
        quality = get("quality", 0)
        if type(quality) is not int:
            raise TypeError
        values = map(get, VALUE_FIELDS)
        return make((ids[item["meter"]], stamps[item["ts"]], *values, quality, source))

    return reading_of


def _csv_rows(
    names: list[str], ids: Mapping[str, int], stamps: Stamps, source: str
) -> Callable[[list[str]], Reading]:
    make = Reading._make
    meter_at, ts_at = names.index("meter"), names.index("ts")
    quality_at = names.index("quality") if "quality" in names else None
    present = [(VALUE_FIELDS.index(n), at) for at, n in enumerate(names) if n in VALUE_FIELDS]
    width = len(names)

    def reading_of(row: list[str]) -> Reading:
        if len(row) != width:
            raise IndexError
        values: list[float | None] = [None] * len(VALUE_FIELDS)
        for slot, at in present:
            cell = row[at]
            if cell:
                values[slot] = float(cell)
        quality = int(row[quality_at]) if quality_at is not None and row[quality_at] else 0
        return make((ids[row[meter_at]], stamps[row[ts_at]], *values, quality, source))

    return reading_of

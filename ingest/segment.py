"""The format of one spool segment (pure: bytes in, records out).

A segment ``NNNNNNNNNN.seg`` starts with ``b"MHSPOOL2"`` and a 16-byte segment id (unique,
so that replay progress can be kept per segment), then records
``[u32 magic "MHRC"][u32 length][u32 crc32(length, payload)][payload]`` (little-endian).

What a scan recovers: every record whose header and checksum are intact. After a damaged
record the scan resynchronises on the next record magic whose record checks out, so the
records after it are recovered too, whether the payload or the length was hit. A file that
ends inside a record is a *torn tail* (an append that never returned, so never
acknowledged); anything else unreadable is *corrupt*. Segments of the first format (no
header: ``[u32 length][u32 crc32(payload)][payload]``) are still read, without resync.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

FILE_MAGIC = b"MHSPOOL2"
FILE_HEADER = struct.Struct("<8s16s")
_RECORD_MAGIC = b"MHRC"
_HEADER = struct.Struct("<4sII")
_LEGACY_HEADER = struct.Struct("<II")


def file_header() -> bytes:
    """The first bytes of a new segment, with a fresh segment id."""
    return FILE_HEADER.pack(FILE_MAGIC, uuid.uuid4().bytes)


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One intact record: its payload and the byte offset just past it in its segment."""

    end: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """What a segment held: its intact records, a torn tail and any corrupt records."""

    path: Path
    segment_id: str
    entries: list[SpoolRecord]
    torn_bytes: int
    corrupt_records: int
    corrupt_bytes: int = 0

    @property
    def records(self) -> list[bytes]:
        return [entry.payload for entry in self.entries]


def record(payload: bytes) -> bytes:
    """The bytes of one record holding ``payload``."""
    length = len(payload)
    return _HEADER.pack(_RECORD_MAGIC, length, _crc(length, payload)) + payload


def _crc(length: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little")))


def scan_segment(path: Path) -> SegmentScan:
    """Read every intact record of a segment; a torn tail and corrupt records are measured,
    not returned."""
    data = path.read_bytes()
    if not data.startswith(FILE_MAGIC):
        if len(data) < FILE_HEADER.size and FILE_MAGIC.startswith(data):
            return SegmentScan(path, path.name, [], len(data), 0)  # torn while created
        return _scan_legacy(path, data)
    if len(data) < FILE_HEADER.size:
        return SegmentScan(path, path.name, [], len(data), 0)
    segment_id = uuid.UUID(bytes=data[len(FILE_MAGIC) : FILE_HEADER.size]).hex
    entries: list[SpoolRecord] = []
    offset, corrupt, corrupt_bytes, torn = FILE_HEADER.size, 0, 0, 0
    while offset < len(data):
        end = _record_end(data, offset)
        if end is not None:
            entries.append(SpoolRecord(end, data[offset + _HEADER.size : end]))
            offset = end
            continue
        following = _resync(data, offset + 1)
        if following is None and _is_torn_tail(data, offset):
            torn = len(data) - offset
            break
        corrupt += 1
        stop = len(data) if following is None else following
        corrupt_bytes += stop - offset
        offset = stop
    return SegmentScan(path, segment_id, entries, torn, corrupt, corrupt_bytes)


def _record_end(data: bytes, offset: int) -> int | None:
    """The end of the intact record at ``offset``, or None."""
    if offset + _HEADER.size > len(data):
        return None
    magic, length, crc = _HEADER.unpack_from(data, offset)
    end: int = offset + _HEADER.size + length
    if magic != _RECORD_MAGIC or length == 0 or end > len(data):
        return None
    if _crc(length, memoryview(data)[offset + _HEADER.size : end]) != crc:
        return None
    return end


def _resync(data: bytes, start: int) -> int | None:
    """The offset of the next intact record at or after ``start``, or None."""
    found = data.find(_RECORD_MAGIC, start)
    while found != -1:
        if _record_end(data, found) is not None:
            return found
        found = data.find(_RECORD_MAGIC, found + 1)
    return None


def _is_torn_tail(data: bytes, offset: int) -> bool:
    """Whether the file ends inside a record that begins at ``offset`` (an interrupted
    append), as opposed to damaged bytes."""
    rest = data[offset:]
    if len(rest) < _HEADER.size:
        return _RECORD_MAGIC.startswith(rest[: len(_RECORD_MAGIC)])
    magic, length, _ = _HEADER.unpack_from(data, offset)
    return bool(magic == _RECORD_MAGIC and offset + _HEADER.size + length > len(data))


def _scan_legacy(path: Path, data: bytes) -> SegmentScan:
    """A segment of the first format: ``[u32 length][u32 crc32(payload)][payload]``."""
    entries: list[SpoolRecord] = []
    offset, corrupt = 0, 0
    while offset + _LEGACY_HEADER.size <= len(data):
        length, crc = _LEGACY_HEADER.unpack_from(data, offset)
        start, end = offset + _LEGACY_HEADER.size, offset + _LEGACY_HEADER.size + length
        if end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc or not payload:
            if end == len(data):
                break  # a torn last record whose length happened to fit
            corrupt += 1
        else:
            entries.append(SpoolRecord(end, payload))
        offset = end
    return SegmentScan(path, path.name, entries, len(data) - offset, corrupt)

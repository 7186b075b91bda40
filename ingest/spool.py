"""An append-only on-disk spool that holds acknowledged readings while the database is away.

A segment ``NNNNNNNNNN.seg`` starts with ``b"MHSPOOL2"`` and a 16-byte segment id (unique,
so that replay progress can be kept per segment), then records
``[u32 magic "MHRC"][u32 length][u32 crc32(length, payload)][payload]`` (little-endian).
`append` returns only after the whole record is written and fsynced; when a write fails
(a full disk) the segment is cut back to where the record began and `SpoolFullError` is
raised, so no acknowledged record is ever torn. A torn last record (a crash mid-write, never
acknowledged) is measured and not replayed. A record damaged later (a bad disk) is counted
as corrupt and the scan resynchronises on the next record magic, so every intact record is
still returned. Segments written before this format (no header) are read as they were.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import SpoolFullError, SpoolInUseError, SpoolWriteError

_FILE_MAGIC = b"MHSPOOL2"
_FILE_HEADER = struct.Struct("<8s16s")
_RECORD_MAGIC = b"MHRC"
_HEADER = struct.Struct("<4sII")
_LEGACY_HEADER = struct.Struct("<II")
_SUFFIX = ".seg"
CORRUPT_DIR = "corrupt"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


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


class Spool:
    """Append-only segments under ``directory``, at most ``max_bytes`` in all.

    Example::

        spool = Spool(Path(".run/spool"), max_bytes=2**30)
        spool.append(b"payload")          # durable when this returns
        for scan in spool.scan_closed():  # replay, oldest first
            ...
            spool.remove(scan.path)
    """

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int = 64 * 2**20):
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock: int | None = _lock_directory(directory)
        self._fd: int | None = None
        self._active: Path | None = None
        self._active_size = 0

    @property
    def corrupt_directory(self) -> Path:
        return self.directory / CORRUPT_DIR

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    def _next_path(self) -> Path:
        segments = self._segments()
        number = int(segments[-1].stem) + 1 if segments else 1
        return self.directory / f"{number:010d}{_SUFFIX}"

    def _open_new(self) -> None:
        self.close()
        path = self._next_path()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as exc:
            raise _write_error(self.directory, exc) from exc
        try:
            _write_all(fd, _FILE_HEADER.pack(_FILE_MAGIC, uuid.uuid4().bytes))
            os.fsync(fd)
            _fsync_directory(self.directory)  # the new file's name is durable too
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _write_error(self.directory, exc) from exc
        self._fd, self._active, self._active_size = fd, path, _FILE_HEADER.size

    def append(self, payload: bytes) -> None:
        """Append one record and fsync it. Raises `SpoolFullError` past the size limit or
        when the disk is full (`SpoolWriteError` on another write error); the segment then
        holds no part of the record."""
        if not payload:
            raise ValueError("a spool record must not be empty")
        record = _record(payload)
        total = self.total_bytes()
        if total + len(record) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.directory} is full ({total} of {self.max_bytes} bytes)"
            )
        if self._fd is None or self._active_size + len(record) > self.segment_bytes:
            self._open_new()
        assert self._fd is not None
        try:
            _write_all(self._fd, record)
            os.fsync(self._fd)
        except OSError as exc:
            self._cut_back()
            raise _write_error(self.directory, exc) from exc
        self._active_size += len(record)

    def _cut_back(self) -> None:
        """Remove a partly written record and close the segment (a failed fsync leaves the
        file's state unknown, so it takes no more records)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._active_size)
            os.fsync(self._fd)
        except OSError:
            pass  # the rest is a torn tail: never acknowledged, measured on replay
        finally:
            self.close()

    def rotate(self) -> None:
        """Close the active segment so that every record so far is in a closed segment."""
        self.close()

    def close(self) -> None:
        """Close the active segment (the spool stays usable; see `release`)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._active, self._active_size = None, None, 0

    def release(self) -> None:
        """Close, and let another process use this spool directory."""
        self.close()
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    def closed_segments(self) -> list[Path]:
        return [p for p in self._segments() if p != self._active]

    def scan_closed(self) -> Iterator[SegmentScan]:
        for path in self.closed_segments():
            yield scan_segment(path)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def set_aside(self, path: Path) -> Path:
        """Move a segment into ``corrupt/`` (kept whole for inspection); its new path."""
        target_dir = self.corrupt_directory
        target_dir.mkdir(exist_ok=True)
        target = target_dir / f"{path.stem}-{time.time_ns()}{_SUFFIX}"
        path.rename(target)
        _fsync_directory(target_dir)
        _fsync_directory(self.directory)
        return target

    def corrupt_segments(self) -> list[Path]:
        """Segments set aside in ``corrupt/`` (by this or an earlier run)."""
        return sorted(self.corrupt_directory.glob(f"*{_SUFFIX}"))

    def total_bytes(self) -> int:
        return sum(_size(p) for p in self._segments())

    def oldest_age(self) -> float:
        """Seconds since the oldest spooled segment was written (0 when empty)."""
        for path in self._segments():
            try:
                return time.time() - path.stat().st_mtime
            except FileNotFoundError:  # replayed meanwhile
                continue
        return 0.0

    def segment_count(self) -> int:
        return len(self._segments())

    def is_empty(self) -> bool:
        return not self._segments()


def _record(payload: bytes) -> bytes:
    length = len(payload)
    return _HEADER.pack(_RECORD_MAGIC, length, _crc(length, payload)) + payload


def _crc(length: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little")))


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is written (it may write less, e.g. on a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no byte written")
        view = view[written:]


def _write_error(directory: Path, exc: OSError) -> SpoolFullError:
    if exc.errno in _FULL_ERRNOS:
        return SpoolFullError(f"spool {directory}: the disk is full ({exc.strerror})")
    return SpoolWriteError(f"spool {directory}: write failed ({exc.strerror})")


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # replayed meanwhile
        return 0


def _lock_directory(directory: Path) -> int:
    """An exclusive lock on the spool directory: two processes appending to and replaying
    the same segments would lose or double readings."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolInUseError(
            f"spool {directory} is in use by another process; give each process its own "
            "MHUB_SPOOL_DIR"
        ) from None
    return fd


def scan_segment(path: Path) -> SegmentScan:
    """Read every intact record of a segment; a torn tail and corrupt records are measured,
    not returned."""
    data = path.read_bytes()
    if not data.startswith(_FILE_MAGIC):
        if len(data) < _FILE_HEADER.size and _FILE_MAGIC.startswith(data):
            return SegmentScan(path, path.name, [], len(data), 0)  # torn while created
        return _scan_legacy(path, data)
    if len(data) < _FILE_HEADER.size:
        return SegmentScan(path, path.name, [], len(data), 0)
    segment_id = uuid.UUID(bytes=data[len(_FILE_MAGIC) : _FILE_HEADER.size]).hex
    entries: list[SpoolRecord] = []
    offset, corrupt, corrupt_bytes, torn = _FILE_HEADER.size, 0, 0, 0
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

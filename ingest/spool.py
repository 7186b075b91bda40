"""An append-only on-disk spool that holds acknowledged readings while the database is away.

Segment files ``NNNNNNNNNN.seg`` hold records ``[u32 length][u32 crc32][payload]``
(little-endian). `append` returns only after the record is fsynced. A torn last record (a
crash mid-write) is detected by its length or checksum, counted, reported and never replayed.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import SpoolFullError, SpoolInUseError

_HEADER = struct.Struct("<II")
_SUFFIX = ".seg"


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """What a segment held: its good records and whether its tail was torn or corrupt."""

    path: Path
    records: list[bytes]
    torn_bytes: int
    corrupt_records: int


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

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    def _next_path(self) -> Path:
        segments = self._segments()
        number = int(segments[-1].stem) + 1 if segments else 1
        return self.directory / f"{number:010d}{_SUFFIX}"

    def _open_new(self) -> None:
        self.close()
        path = self._next_path()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._active, self._active_size = path, 0
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name is durable too
        finally:
            os.close(dir_fd)

    def append(self, payload: bytes) -> None:
        """Append one record and fsync it; `SpoolFullError` past the size limit."""
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if self.total_bytes() + len(record) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.directory} is full ({self.total_bytes()} of {self.max_bytes} bytes)"
            )
        if self._fd is None or self._active_size + len(record) > self.segment_bytes:
            self._open_new()
        assert self._fd is not None
        os.write(self._fd, record)
        os.fsync(self._fd)
        self._active_size += len(record)

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

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def oldest_age(self) -> float:
        """Seconds since the oldest spooled segment was written (0 when empty)."""
        segments = self._segments()
        return time.time() - segments[0].stat().st_mtime if segments else 0.0

    def is_empty(self) -> bool:
        return not self._segments()


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
    """Read every intact record of a segment; a torn or corrupt tail is measured, not returned."""
    data = path.read_bytes()
    records: list[bytes] = []
    offset, corrupt = 0, 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            if end == len(data):
                break  # a torn last record whose length happened to fit
            corrupt += 1
        else:
            records.append(payload)
        offset = end
    torn = len(data) - offset
    return SegmentScan(path, records, torn, corrupt)

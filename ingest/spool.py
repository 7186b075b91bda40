"""An append-only on-disk spool that holds acknowledged readings while the database is away.

Segment files and their records are described in `ingest.segment`. `append` returns only
after the whole record is written and fsynced; when a write fails (a full disk) the segment
is cut back to where the record began and `SpoolFullError` is raised, so no acknowledged
record is ever torn. Replay removes a segment, or sets a damaged one aside in ``corrupt/``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ingest.errors import SpoolFullError, SpoolInUseError, SpoolWriteError
from ingest.segment import FILE_HEADER, SegmentScan, SpoolRecord, file_header, scan_segment
from ingest.segment import record as encode_record

__all__ = ["CORRUPT_DIR", "SegmentScan", "Spool", "SpoolRecord", "scan_segment"]

_SUFFIX = ".seg"
CORRUPT_DIR = "corrupt"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


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
            _write_all(fd, file_header())
            os.fsync(fd)
            _fsync_directory(self.directory)  # the new file's name is durable too
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _write_error(self.directory, exc) from exc
        self._fd, self._active, self._active_size = fd, path, FILE_HEADER.size

    def append(self, payload: bytes) -> None:
        """Append one record and fsync it. Raises `SpoolFullError` past the size limit or
        when the disk is full (`SpoolWriteError` on another write error); the segment then
        holds no part of the record."""
        if not payload:
            raise ValueError("a spool record must not be empty")
        record = encode_record(payload)
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

from __future__ import annotations

import errno
import math
import os
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import batch_codec
from ingest.errors import SpoolFullError, SpoolInUseError, SpoolWriteError
from ingest.quarantine import QuarantineRecord, Reason
from ingest.spool import SegmentScan, Spool, scan_segment
from ingest.writer import Batch
from meterhub.reading import LOCAL_TZ, Reading

RECORD_HEADER = 12  # magic, length, checksum (see ingest/spool.py)


def test_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=64)
    payloads = [f"record-{i}".encode() * 3 for i in range(10)]
    for payload in payloads:
        spool.append(payload)
    spool.rotate()
    scans = list(spool.scan_closed())
    assert len(scans) > 1
    assert [r for scan in scans for r in scan.records] == payloads
    assert all(scan.torn_bytes == 0 and scan.corrupt_records == 0 for scan in scans)


def test_active_segment_is_not_offered_for_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append(b"a")
    assert spool.closed_segments() == []
    spool.rotate()
    assert len(spool.closed_segments()) == 1


def test_size_limit_refuses_more(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    spool.append(b"x" * 50)
    with pytest.raises(SpoolFullError, match="is full"):
        spool.append(b"y" * 50)


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 20])
def test_torn_tail_is_measured_not_returned(tmp_path: Path, cut: int) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append(b"first record")
    spool.append(b"second record, torn")
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    size = segment.stat().st_size
    with segment.open("r+b") as f:
        f.truncate(size - cut)
    scan = scan_segment(segment)
    assert scan.records == [b"first record"]
    assert scan.torn_bytes == len(b"second record, torn") + RECORD_HEADER - cut
    assert scan.corrupt_records == 0


def _three_records(directory: Path) -> tuple[Path, bytearray]:
    spool = Spool(directory, max_bytes=10_000)
    for payload in (b"one", b"two", b"three"):
        spool.append(payload)
    spool.close()
    (segment,) = directory.glob("*.seg")
    return segment, bytearray(segment.read_bytes())


def test_corrupt_payload_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    segment, data = _three_records(tmp_path)
    data[data.index(b"two")] ^= 0xFF
    segment.write_bytes(bytes(data))
    scan = scan_segment(segment)
    assert scan.records == [b"one", b"three"]
    assert scan.corrupt_records == 1 and scan.torn_bytes == 0
    assert scan.corrupt_bytes == RECORD_HEADER + len(b"two")


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00"])
def test_a_damaged_length_is_resynchronised_on_the_next_record(
    tmp_path: Path, garbage: bytes
) -> None:
    segment, data = _three_records(tmp_path)
    length_at = data.index(b"two") - RECORD_HEADER + 4  # after the record magic
    data[length_at : length_at + 4] = garbage
    segment.write_bytes(bytes(data))
    scan = scan_segment(segment)
    assert scan.records == [b"one", b"three"]
    assert scan.corrupt_records == 1 and scan.torn_bytes == 0


def test_a_damaged_last_record_is_corrupt_not_torn(tmp_path: Path) -> None:
    segment, data = _three_records(tmp_path)
    data[-1] ^= 0x01  # complete length, wrong checksum: acknowledged bytes, damaged
    segment.write_bytes(bytes(data))
    scan = scan_segment(segment)
    assert scan.records == [b"one", b"two"]
    assert scan.corrupt_records == 1 and scan.torn_bytes == 0


def test_offsets_of_records_are_stable_for_replay_progress(tmp_path: Path) -> None:
    segment, data = _three_records(tmp_path)
    clean = scan_segment(segment)
    data[data.index(b"two")] ^= 0xFF
    segment.write_bytes(bytes(data))
    damaged = scan_segment(segment)
    assert [e.end for e in damaged.entries] == [clean.entries[0].end, clean.entries[2].end]
    assert damaged.segment_id == clean.segment_id
    assert len({clean.segment_id, *(s.segment_id for s in _other_segments(tmp_path))}) == 3


def _other_segments(directory: Path) -> list[SegmentScan]:
    spool = Spool(directory / "other", max_bytes=10_000, segment_bytes=1)
    spool.append(b"a")
    spool.append(b"b")
    spool.release()
    return [scan_segment(p) for p in sorted((directory / "other").glob("*.seg"))]


def test_segments_of_the_first_format_are_still_read(tmp_path: Path) -> None:
    records = [b"alpha", b"beta"]
    data = b"".join(struct.pack("<II", len(r), zlib.crc32(r)) + r for r in records)
    legacy = tmp_path / "0000000007.seg"
    legacy.write_bytes(data + b"\x09\x00")
    scan = scan_segment(legacy)
    assert scan.records == records and scan.torn_bytes == 2 and scan.corrupt_records == 0


def test_empty_records_are_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    with pytest.raises(ValueError, match="empty"):
        spool.append(b"")


# -- short writes and failing disks (os.write / os.fsync replaced: no real full disk here;
# tests/ingest/test_spool_full.py fills a real tmpfs) ---------------------------------------


def test_short_writes_are_continued_until_the_record_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def dribble(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:5]))

    spool = Spool(tmp_path, max_bytes=10_000)
    monkeypatch.setattr("ingest.spool.os.write", dribble)
    spool.append(b"a record longer than five bytes")
    spool.append(b"and another one")
    spool.rotate()
    assert len(calls) > 10
    (scan,) = spool.scan_closed()
    assert scan.records == [b"a record longer than five bytes", b"and another one"]
    assert scan.torn_bytes == 0 and scan.corrupt_records == 0


def _disk_fills_after(
    monkeypatch: pytest.MonkeyPatch, budget: int, error: int = errno.ENOSPC
) -> None:
    """Let ``budget`` more bytes be written, then behave like a full (or failing) disk:
    a short write, then the error."""
    real_write = os.write
    left = [budget]

    def write(fd: int, data: bytes | memoryview) -> int:
        if left[0] <= 0:
            raise OSError(error, os.strerror(error))
        written = real_write(fd, bytes(data[: left[0]]))
        left[0] -= written
        return written

    monkeypatch.setattr("ingest.spool.os.write", write)


@pytest.mark.parametrize("budget", [0, 3, RECORD_HEADER, RECORD_HEADER + 10])
def test_a_full_disk_leaves_no_part_of_the_refused_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append(b"acknowledged")
    (segment,) = tmp_path.glob("*.seg")
    size = segment.stat().st_size
    _disk_fills_after(monkeypatch, budget)
    with pytest.raises(SpoolFullError, match="disk is full"):
        spool.append(b"x" * 100)
    assert segment.stat().st_size == size  # cut back to where the record began
    monkeypatch.undo()  # space again
    spool.append(b"after the disk had room again")
    spool.rotate()
    records = [r for scan in spool.scan_closed() for r in scan.records]
    assert records == [b"acknowledged", b"after the disk had room again"]
    assert all(s.torn_bytes == 0 and s.corrupt_records == 0 for s in spool.scan_closed())


def test_other_write_errors_are_spool_errors_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append(b"acknowledged")
    _disk_fills_after(monkeypatch, 4, errno.EIO)
    with pytest.raises(SpoolWriteError, match="write failed") as caught:
        spool.append(b"y" * 100)
    assert isinstance(caught.value, SpoolFullError)  # producers treat it alike: 503, no ack
    spool.rotate()
    assert [r for scan in spool.scan_closed() for r in scan.records] == [b"acknowledged"]


def test_a_failed_fsync_is_not_acknowledged_and_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append(b"acknowledged")
    (segment,) = tmp_path.glob("*.seg")
    size = segment.stat().st_size

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "no space")

    monkeypatch.setattr("ingest.spool.os.fsync", failing_fsync)
    with pytest.raises(SpoolFullError):
        spool.append(b"z" * 100)
    monkeypatch.undo()
    assert segment.stat().st_size == size


def test_a_segment_that_cannot_be_started_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    _disk_fills_after(monkeypatch, 10)  # not even the segment header fits
    with pytest.raises(SpoolFullError):
        spool.append(b"first")
    assert spool.is_empty()


def test_batch_codec_keeps_what_validation_needs() -> None:
    ts = datetime(2026, 1, 1, 8, tzinfo=LOCAL_TZ)
    batch = Batch(
        chunks=[
            [Reading(1, ts, energy=math.nan, power=math.inf, quality=3, source="s")],
            [Reading(2, datetime(2026, 1, 1), energy=1.0)],
        ],
        rejects=[QuarantineRecord("mqtt", Reason.MALFORMED_PAYLOAD, "bad json", "{", None, None)],
    )
    decoded = batch_codec.decode(batch_codec.encode(batch))
    first = decoded.chunks[0][0]
    assert first.ts == ts and first.ts.tzinfo == UTC
    assert first.energy is not None and math.isnan(first.energy)
    assert first.power == math.inf and first.quality == 3
    assert decoded.chunks[1][0].ts.tzinfo is None
    assert decoded.rejects == batch.rejects


def test_batch_codec_refuses_foreign_classes() -> None:
    import pickle

    evil = pickle.dumps((1, [[(1, Path("/etc"))]], []))
    with pytest.raises(pickle.UnpicklingError, match="pathlib"):
        batch_codec.decode(evil)


def test_a_spool_directory_belongs_to_one_process_at_a_time(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1000)
    with pytest.raises(SpoolInUseError, match="give each process its own MHUB_SPOOL_DIR"):
        Spool(tmp_path, max_bytes=1000)
    first.release()
    Spool(tmp_path, max_bytes=1000).release()

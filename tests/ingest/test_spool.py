from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import batch_codec
from ingest.errors import SpoolFullError, SpoolInUseError
from ingest.quarantine import QuarantineRecord, Reason
from ingest.spool import Spool, scan_segment
from ingest.writer import Batch
from meterhub.reading import LOCAL_TZ, Reading


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
    assert scan.torn_bytes == len(b"second record, torn") + 8 - cut


def test_corrupt_record_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    for payload in (b"one", b"two", b"three"):
        spool.append(payload)
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[8 + 3 + 8] ^= 0xFF  # first payload byte of "two"
    segment.write_bytes(bytes(data))
    scan = scan_segment(segment)
    assert scan.records == [b"one", b"three"]
    assert scan.corrupt_records == 1


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

"""`batches`: lazy fixed-size lists."""

from __future__ import annotations

from simulators.mqtt_publisher import batches


def test_batches_split_items_and_keep_a_short_last_one() -> None:
    assert list(batches(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batches([], 3)) == []

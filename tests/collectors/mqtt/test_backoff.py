"""The reconnection schedule: at once after a drop, then doubling up to a short cap."""

from __future__ import annotations

import itertools

from collectors.mqtt.bridge import reconnect_delays


def test_the_first_attempt_after_a_drop_does_not_wait() -> None:
    assert next(reconnect_delays()) == 0.0


def test_later_attempts_back_off_to_a_few_seconds() -> None:
    delays = list(itertools.islice(reconnect_delays(), 20))
    waits = delays[1:]
    assert all(0 < a <= b for a, b in itertools.pairwise(waits))
    assert waits[0] < 1.0  # a broker back after a restart is found within a second
    assert max(waits) == waits[-1] <= 5.0  # capped: never the old 30 s
    assert sum(waits[:4]) < 5.0  # four retries in under five seconds

"""What the wire allows: each meter's poll as bytes on its RS-485 bus, its time at line speed
(`simulators.line_speed`), and the meters per minute the benchmark's buses could carry if
the collector kept every one of them busy ("line-limited capacity")."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from functools import lru_cache

from bench._registry import INTERVAL, Row
from collectors.dlt645.codec import decode
from collectors.dlt645.commands import encode_read
from collectors.dlt645.poller import WITHOUT_CLOCK
from collectors.dlt645.reader import DATE_DI, TIME_DI
from collectors.modbus import load_model, plan_blocks
from meterhub.reading import LOCAL_TZ
from simulators.dlt645_meter import Dlt645Meter, LinearProvider
from simulators.line_speed import LineTiming

#: Bytes of a Modbus RTU read request (unit, fc, address, count, CRC) and of its reply
#: before the register words (unit, fc, byte count, CRC).
_RTU_REQUEST, _RTU_REPLY = 8, 5


@lru_cache(maxsize=1)
def dlt645_frames(*, clock: bool = False) -> tuple[tuple[int, int], ...]:
    """(request, reply) bytes of each exchange of a DL/T 645 poll (with ``clock``: of the
    meter's date and time only), as the poller sends it and the simulated meter answers (FE
    preambles included)."""
    meter, now = Dlt645Meter("000000000001"), dt.datetime.now(LOCAL_TZ)
    sizes = []
    for di in (DATE_DI, TIME_DI) if clock else [q.di for q in WITHOUT_CLOCK]:
        request = encode_read(meter.address, di)
        frame = decode(request).frame
        assert frame is not None
        reply = meter.respond(frame, now, LinearProvider())
        assert reply is not None
        sizes.append((len(request), len(reply)))
    return tuple(sizes)


@lru_cache(maxsize=64)
def modbus_frames(model: str) -> tuple[tuple[int, int], ...]:
    """(request, reply) bytes of each RTU exchange of a poll of ``model``."""
    return tuple(
        (_RTU_REQUEST, _RTU_REPLY + 2 * block.count) for block in plan_blocks(load_model(model))
    )


def poll_time(line: LineTiming, frames: Sequence[tuple[int, int]], *, gap: float = 0.0) -> float:
    """Seconds one poll keeps its bus busy: every exchange at line speed, plus ``gap`` (the
    collector's own quiet time) before each request."""
    return sum(line.exchange(request, reply) + gap for request, reply in frames)


def dlt645_poll_time(line: LineTiming, *, gap: float = 0.0, clock_share: float = 0.0) -> float:
    """A poll, and the clock's two more requests in ``clock_share`` of the polls."""
    clock = poll_time(line, dlt645_frames(clock=True), gap=gap)
    return poll_time(line, dlt645_frames(), gap=gap) + clock_share * clock


def modbus_poll_time(line: LineTiming, rows: Sequence[Row]) -> float:
    """The mean over the fleet's meters (its models in turn)."""
    if not rows:
        return 0.0
    return statistics.fmean(poll_time(line, modbus_frames(model or "")) for _, model in rows)


def line_limited(links: int, per_meter: float) -> float:
    """Meters per minute ``links`` buses carry when each is busy all the time."""
    return links * INTERVAL / per_meter if per_meter > 0 else 0.0

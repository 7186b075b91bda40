"""The polling path under faults of its terminals: a Modbus and a DL/T 645 gateway
unreachable for half an hour of meter time (its process stopped, then started again on the
same port), and a meter whose clock jumps. Nothing invented for the outage, offline and
online events, the intervals across it derived as a gap and marked estimated; nothing lost
or doubled around a clock jump, which the collector flags."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from meterhub.reading import Quality
from meterhub.settings import Settings
from tests.reliability.accounting import Ledger, Tally, assert_exact
from tests.reliability.polling import (
    CLOCK_EVERY_POLL,
    STEP,
    BookingSink,
    PollFleet,
    PollStream,
    poll_fleet,
    tick,
)
from tests.support import derive_all

pytestmark = pytest.mark.integration

INTERVAL = timedelta(minutes=15)


async def _ticks(db: asyncpg.Connection, meter: int) -> list[datetime]:
    rows = await db.fetch("SELECT ts FROM readings WHERE meter_id = $1 ORDER BY ts", meter)
    return [r["ts"] for r in rows]


async def run_gateway_outage(
    db: asyncpg.Connection, sink_settings: Settings, protocol: str, *, cycles: int, down: range
) -> tuple[Tally, PollFleet]:
    ledger = Ledger(f"{protocol} gateway unreachable {len(down)} min [poll]")

    async def fault(n: int) -> None:
        if n == down.start:
            await (fleet.modbus.stop() if protocol == "modbus" else fleet.stop_dlt645())
        elif n == down.stop:
            await (fleet.modbus.start() if protocol == "modbus" else fleet.start_dlt645())

    async with poll_fleet(db) as fleet, BookingSink(sink_settings, ledger) as sink:
        stream = PollStream(sink)
        await stream.load(db, fleet)
        started = time.monotonic()
        try:
            await stream.run(range(cycles), before=fault)
            took = time.monotonic() - started
            slowest = sorted(stream.cycle_seconds)[-5:]
            print(f"{cycles} cycles in {took:.1f} s; slowest {slowest}")
        finally:
            await stream.close()
        await stream.book.flush(db)
    return await ledger.settle(db), fleet


@pytest.mark.parametrize("protocol", ["modbus", "dlt645"])
async def test_a_gateway_unreachable_for_half_an_hour_invents_nothing_and_leaves_a_gap(
    db: asyncpg.Connection, sink_settings: Settings, protocol: str
) -> None:
    await check_gateway_outage(db, sink_settings, protocol, cycles=60, down=range(20, 50))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["modbus", "dlt645"])
async def test_a_gateway_unreachable_for_two_hours_invents_nothing_and_leaves_a_gap(
    db: asyncpg.Connection, sink_settings: Settings, protocol: str
) -> None:
    await check_gateway_outage(db, sink_settings, protocol, cycles=300, down=range(60, 180))


async def check_gateway_outage(
    db: asyncpg.Connection, sink_settings: Settings, protocol: str, *, cycles: int, down: range
) -> None:
    tally, fleet = await run_gateway_outage(db, sink_settings, protocol, cycles=cycles, down=down)
    assert_exact(tally)
    cut = fleet.meters[protocol]
    other = fleet.meters["modbus" if protocol == "dlt645" else "dlt645"]
    every = [tick(n) for n in range(cycles)]
    for meter in other:
        assert await _ticks(db, meter) == every  # the other gateway: every minute
    last_before, back = tick(down.start - 1), tick(down.stop)
    resumed: dict[int, datetime] = {}
    for meter in cut:
        ticks = await _ticks(db, meter)
        assert [t for t in ticks if t <= last_before] == every[: down.start]
        after = [t for t in ticks if t > last_before]
        # Nothing invented during the outage; back within a few cycles (the link's reconnect
        # back-off runs on the event loop's clock, not the virtual one: the attempt that
        # succeeds may fall inside a cycle, so the meters polled before it in that cycle
        # come back one cycle later than the others).
        assert after and back <= after[0] <= back + 5 * STEP
        assert after == every[every.index(after[0]) :]  # then every minute again
        resumed[meter] = after[0]
    assert max(resumed.values()) - min(resumed.values()) <= STEP  # one reconnect for the link

    events = await db.fetch(
        "SELECT meter_id, kind FROM terminal_events WHERE meter_id = ANY($1) ORDER BY id",
        cut + other,
    )
    assert sorted((e["meter_id"], e["kind"]) for e in events) == sorted(
        [(m, "offline") for m in cut] + [(m, "online") for m in cut]
    )
    await derive_all(db)
    gaps = await db.fetch(
        "SELECT meter_id, start, \"end\" FROM interval_events WHERE kind = 'gap' "
        "AND meter_id = ANY($1) ORDER BY meter_id",
        cut + other,
    )
    assert [(g["meter_id"], g["start"], g["end"]) for g in gaps] == [
        (m, last_before, resumed[m]) for m in sorted(cut)
    ]
    intervals = await db.fetch(
        "SELECT meter_id, start, estimated FROM intervals WHERE meter_id = ANY($1)", cut + other
    )
    assert intervals
    for row in intervals:
        cut_off = row["meter_id"] in resumed
        across = cut_off and row["start"] < resumed[row["meter_id"]]
        across = across and row["start"] + INTERVAL > last_before
        assert row["estimated"] is across, dict(row)
    estimated = {(r["meter_id"], r["start"]) for r in intervals if r["estimated"]}
    assert len(estimated) >= len(cut) * (len(down) // 15)


@pytest.mark.parametrize(
    "jump",
    [600, pytest.param(-3600, marks=pytest.mark.slow)],
    ids=["10 min ahead", "an hour behind"],
)
async def test_a_meter_clock_jump_is_flagged_and_nothing_is_lost_or_doubled(
    db: asyncpg.Connection, sink_settings: Settings, jump: int
) -> None:
    ledger = Ledger(f"dlt645 meter clock jumps {jump:+d} s [poll]")
    jumped, back = 10, 25

    async with poll_fleet(db) as fleet, BookingSink(sink_settings, ledger) as sink:
        meter = fleet.dlt645_meters[0]

        async def fault(n: int) -> None:
            if n == jumped:
                meter.clock_offset = jump
            elif n == back:
                meter.clock_offset = 0

        stream = PollStream(sink, CLOCK_EVERY_POLL)
        await stream.load(db, fleet)
        try:
            await stream.run(range(40), before=fault)
        finally:
            await stream.close()
        await stream.book.flush(db)
    tally = await ledger.settle(db)
    assert_exact(tally)
    assert tally.sent == 40 * 8
    meter_id = fleet.meters["dlt645"][0]
    rows = await db.fetch(
        "SELECT ts, quality FROM readings WHERE meter_id = $1 ORDER BY ts", meter_id
    )
    assert [r["ts"] for r in rows] == [tick(n) for n in range(40)]  # the collector's ticks
    drifting = [n for n, r in enumerate(rows) if r["quality"] & Quality.CLOCK_DRIFT]
    assert drifting == list(range(jumped, back))
    events = await db.fetch(
        "SELECT kind, detail FROM terminal_events WHERE meter_id = $1 ORDER BY id", meter_id
    )
    assert [e["kind"] for e in events] == ["clock_drift", "clock_ok"]
    drift = float(orjson.loads(events[0]["detail"])["drift_s"])
    assert abs(drift - jump) <= 2
    others = await db.fetchval(
        "SELECT count(*) FROM terminal_events WHERE meter_id = ANY($1)",
        [m for m in fleet.meters["dlt645"] + fleet.meters["modbus"] if m != meter_id],
    )
    assert others == 0

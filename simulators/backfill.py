"""Fast-forward: weeks of history for a city's meters, in minutes, through their real paths.

* grid-feed meters: ``POST /v1/readings`` in batches of ``batch_size`` rows, as the grid
  company's feed would have pushed them (`backfill_feed`);
* MQTT meters: messages of many readings from each simulated gateway (`backfill_mqtt`);
* Modbus and DL/T 645 meters keep no history a collector could fetch: their history only
  comes from live polling. `backfill_polled` fills it anyway for demos, handing the
  readings the poll scheduler would have made (stamped at the poll time, source
  ``<protocol>:<link>``) straight to the ingest sink; the wire is skipped.

Faults apply as on the live paths (``no_answer`` leaves gaps, ``garbage_values`` sends
absurd values, replacements switch asset numbers) unless ``faults=False``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from collectors.targets import link_of
from collectors.terminals import TerminalBook
from ingest.outcome import SubmitResult
from ingest.quarantine import QuarantineRecord, Reason
from ingest.sink import IngestSink
from meterhub.reading import VALUE_FIELDS, Reading
from simulators.config import CityConfig
from simulators.fleet import CityFleet, answers, installed
from simulators.grid_feed import GridFeedClient, PushTotals, Row, feed_row
from simulators.meter import SimulatedMeter
from simulators.mqtt_publisher import MqttPublisher, batches
from simulators.registry import registry_address

Progress = Callable[[int], None]


def expected_readings(
    meters: Iterable[SimulatedMeter], ticks: Sequence[datetime], *, faults: bool = True
) -> int:
    """How many readings a backfill of ``meters`` over ``ticks`` sends: one per tick after
    installation, less the gaps of ``no_answer`` faults when ``faults``."""
    return sum(sum(1 for ts in ticks if answers(m, ts, faults=faults)) for m in meters)


def _feed_batches(
    meters: Sequence[SimulatedMeter], ticks: Iterable[datetime], *, size: int, faults: bool
) -> Iterator[list[Row]]:
    rows = (  # tick by tick, so that each batch covers a stretch of time
        feed_row(meter, ts, faults=faults)
        for ts in ticks
        for meter in meters
        if answers(meter, ts, faults=faults)
    )
    return batches(rows, size)


async def backfill_feed(
    client: GridFeedClient,
    meters: Sequence[SimulatedMeter],
    ticks: Sequence[datetime],
    *,
    batch_size: int = 5000,
    concurrency: int = 2,
    faults: bool = True,
    progress: Progress | None = None,
) -> PushTotals:
    """Push the grid-feed ``meters``' readings at every tick, ``concurrency`` batches at a
    time; `GridFeedError` stops it (batches already answered stay stored).

    Example::

        ticks = history_ticks(until=wall_clock(), span=timedelta(weeks=8), interval=QUARTER)
        totals = await backfill_feed(client, fleet.feed("sgcc-yiwu"), ticks)
    """
    totals = PushTotals()
    window = asyncio.Semaphore(concurrency)

    async def push(batch: list[Row]) -> None:
        try:
            totals.add(await client.push(batch))
        finally:
            window.release()
        if progress is not None:
            progress(len(batch))

    async with asyncio.TaskGroup() as group:
        for batch in _feed_batches(meters, ticks, size=batch_size, faults=faults):
            await window.acquire()
            group.create_task(push(batch))
    return totals


async def backfill_mqtt(
    fleet: CityFleet,
    gateway_ids: Sequence[str],
    ticks: Sequence[datetime],
    *,
    url: str,
    per_message: int = 2000,
    concurrency: int = 8,
    faults: bool = True,
    progress: Progress | None = None,
) -> int:
    """Publish each MQTT gateway's history, ``concurrency`` gateways at a time, in messages
    of about ``per_message`` readings; returns the readings acknowledged by the broker.

    The broker only queues them: a running ``meterhub ingest-mqtt`` stores them.
    """
    window = asyncio.Semaphore(concurrency)
    sent = 0

    async def one(gateway_id: str) -> None:
        nonlocal sent
        async with window, MqttPublisher(fleet, gateway_id, url=url) as gateway:
            count = await gateway.publish_history(
                ticks, per_message=per_message, faults=faults, progress=progress
            )
        sent += count

    async with asyncio.TaskGroup() as group:
        for gateway_id in gateway_ids:
            group.create_task(one(gateway_id))
    return sent


def _source(city: CityConfig, meter: SimulatedMeter) -> str:
    spec = meter.spec
    if spec.protocol not in ("modbus", "dlt645"):
        return meter.source
    return f"{spec.protocol}:{link_of(spec.protocol, registry_address(city, spec))}"


def _polled(
    meter: SimulatedMeter, ts: datetime, *, meter_id: int, source: str, faults: bool
) -> tuple[Reading, list[QuarantineRecord]]:
    """What the poll scheduler makes of one poll: good values in a reading stamped with the
    poll time, each non-finite value quarantined on its own."""
    snapshot = meter.snapshot(ts, faults=faults)
    values: dict[str, float] = {}
    bad: list[QuarantineRecord] = []
    for name in VALUE_FIELDS:
        value = getattr(snapshot, name)
        if value is None:
            continue
        if math.isfinite(value):
            values[name] = value
        else:
            detail = f"{name}: decoded to {value}"
            payload = f'{{"field": "{name}", "problem": "{value}"}}'
            bad.append(QuarantineRecord(source, Reason.NON_FINITE, detail, payload, meter_id, ts))
    reading = Reading(meter_id=meter_id, ts=ts, source=source, **values)  # type: ignore[arg-type]
    return reading, bad


async def backfill_polled(
    sink: IngestSink,
    fleet: CityFleet,
    ticks: Sequence[datetime],
    *,
    meter_ids: dict[str, int],
    batch_size: int = 5000,
    faults: bool = True,
    progress: Progress | None = None,
    terminals: TerminalBook | None = None,
    meters: Sequence[SimulatedMeter] | None = None,
) -> SubmitResult:
    """Hand the Modbus and DL/T 645 meters' history to ``sink`` as the poll scheduler would
    have; ``meter_ids`` maps asset numbers to registry ids (unregistered meters are skipped).
    Returns the summed counts (``rejected`` lists the quarantined readings).

    ``terminals`` (the collectors' own `TerminalBook`) records each poll's success or
    failure as the scheduler would, for `TerminalBook.flush` afterwards: a meter that
    stopped answering ends offline since its last answer. ``meters`` replaces the polled
    meters (tests hand a whole small city to the sink this way; other protocols' readings
    carry their ``sim-<protocol>`` source)."""
    city = fleet.city
    if meters is None:
        meters = fleet.speaking("modbus") + fleet.speaking("dlt645")
    sources = {m.spec.code: _source(city, m) for m in meters}
    total = SubmitResult()

    async def flush(readings: list[Reading], rejects: list[QuarantineRecord]) -> None:
        result = await sink.submit(readings, rejects=rejects)
        total.accepted += result.accepted
        total.duplicates += result.duplicates
        total.conflicts += result.conflicts
        total.rejected.extend(result.rejected)
        total.spooled = total.spooled or result.spooled
        if progress is not None:
            progress(len(readings))

    readings: list[Reading] = []
    rejects: list[QuarantineRecord] = []
    polled = {m.spec.code for m in meters if m.spec.protocol in ("modbus", "dlt645")}
    for ts in ticks:
        for meter in meters:
            if not installed(meter, ts):
                continue
            meter_id = meter_ids.get(meter.installation_at(ts).code)
            if meter_id is None:
                continue
            answered = answers(meter, ts, faults=faults)
            if terminals is not None and meter.spec.code in polled:
                if answered:
                    terminals.success(meter_id, ts)
                else:
                    terminals.failure(meter_id, ts, "no answer (simulated poll)")
            if not answered:
                continue
            source = sources[meter.spec.code]
            reading, bad = _polled(meter, ts, meter_id=meter_id, source=source, faults=faults)
            readings.append(reading)
            rejects.extend(bad)
            if len(readings) >= batch_size:
                await flush(readings, rejects)
                readings, rejects = [], []
    if readings or rejects:
        await flush(readings, rejects)
    return total

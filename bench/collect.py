"""Collector benchmark: meters one collector process polls per minute at line speed, the
largest fleet it still holds on its cycle, and MQTT ingest.

    .venv/bin/python bench/collect.py [--quick] [--json] [--modbus N] [--dlt645 N]
        [--dlt645-per-bus N] [--dlt645-baud B] [--modbus-baud B] [--cycles N] [--no-headroom]
        [--cpus 1]

Polling. The simulated meters run in other processes and answer at line speed by default
(`simulators.line_speed`): `simulators.dlt645_fleet` serves TCP transparent gateways, each
with one RS-485 bus of ``--dlt645-per-bus`` DL/T 645 meters (24; 16-32 in the field) at
``--dlt645-baud`` (2400, 8E1, the meter answering 20 ms after a request, one frame on the
wire at a time); `simulators.modbus_fleet` serves Modbus TCP gateway ports, each with
``--modbus-units`` meters (32) on a Modbus RTU bus behind it at ``--modbus-baud`` (9600,
8E1, 3.5-character gaps, 10 ms turnaround), the gateway passing one request at a time.
Baud 0 makes the meters answer at once. Every meter is registered with a 1-minute poll
interval in a throwaway database, and this process runs the real `Scheduler` (one
`LinkWorker` per link on clock-aligned ticks) with the real pollers and a real `IngestSink`,
as `meterhub collect` runs them (first clock reads spread over the hour, start-up heap
frozen), until every link has finished ``--cycles`` cycles (2). The fleets stand for meters
in the field, not on the collector's machine: they run on the CPUs other than the
collector's (``--cpus``, default the collector on the last CPU; `bench._pinning`), and
PostgreSQL, shared, is not pinned. Defaults: 20,000 DL/T 645
meters (834 buses) and 40,000 Modbus meters (1,250 gateways).

Reported: meters polled per minute (successful polls in those cycles / the minutes of
schedule they took: the cycles, unless one overran into a later tick), missed cycles (the
scheduler's counter, plus links still in their last cycle when the run gives up), each
link's cycle time from its tick until its readings were committed (p50 / max across links),
CPU seconds, peak RSS and event-loop lag of this process (how late a 0.2 s timer fires:
p50 / p99 / max per measured minute), the simulators' CPU, and a check that the database
holds one reading per successful poll. Beside them, the baseline of the wire: the
seconds a meter's poll keeps its bus busy at line speed (its frames as the poller sends
them and the simulated meter answers, gaps and turnaround; the collector's own 50 ms quiet
gap between DL/T 645 frames, ``--dlt645-gap-ms``, shown apart), the "line-limited capacity"
(buses x 60 s / that time: the meters per minute these buses could carry if the collector
kept every one busy) and the wire ratio (that time / the collector's median time per meter
on its bus in the last cycle; 1.0 would be a collector that costs the bus nothing).

Headroom (off with ``--quick`` or ``--no-headroom``): the largest fleet that still holds the
cycle, not capped by the number registered: trials of their own (fresh database, fresh
fleets, one cycle: the first, connections opened) with both fleets ``x(1 + k * step)`` the
registered size (``--headroom-step`` 0.25: more buses and gateways, the same meters on each)
until one loses the cycle (a missed cycle or a failed poll) or ``--headroom-max`` (4.0) is
reached, then ``--headroom-bisect`` (1) halvings between the last that held and the first
that did not. ``max_meters_per_min`` is the meters per minute of the largest that held.

MQTT. One simulated gateway publishes a backlog of QoS 1 messages that the broker queues for
two persistent sessions: (a) a plain paho subscriber that only counts (paho acks on receipt)
drains its copy: the broker's own delivery rate; (b) `MqttIngestWorker` (defaults of
`meterhub ingest-mqtt`) drains the other into the database, acking each message once
committed: end to end. mqtt_ratio = (b) / (a).

With ``--json`` the last line is one object: today's keys (``modbus_meters_per_min``,
``dlt645_meters_per_min``, ``missed_cycles``, ``mqtt_ratio`` and the detail after them)
and ``dlt645_meters_per_min_at_2400_baud`` / ``modbus_meters_per_min_at_9600_baud`` (null
unless run at those rates), ``max_meters_per_min``, ``max_fleet_scale``,
``headroom_trials`` ([scale, held, meters/min] each), and per protocol
``*_line_limited_per_min``, ``*_poll_line_s``, ``*_poll_took_s``, ``*_wire_ratio``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import uvloop
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from bench._headroom import Trial, best, report_search, scaled, search, trial_of
from bench._mqtt import MqttFigures, mqtt_phase, report_mqtt
from bench._polling import PollFigures, polling_phase, report_polling
from bench._registry import INTERVAL, PROTOCOLS
from meterhub.logs import configure_logging
from meterhub.settings import Settings, get_settings
from simulators.dlt645_fleet import MAX_PER_BUS
from simulators.line_speed import DLT645_BAUD, MODBUS_BAUD


def _at(polls: PollFigures, protocol: str, baud: int, wanted: int) -> int | None:
    return round(polls.per_min(protocol)) if baud == wanted else None


def _round(value: float | None, digits: int = 0) -> float | None:
    return None if value is None else round(value, digits)


def summary(
    polls: PollFigures | None,
    mq: MqttFigures | None,
    trials: list[Trial],
    args: argparse.Namespace,
) -> dict[str, object]:
    """The JSON line: the headline figures first, then the detail behind them."""
    out: dict[str, object] = {}
    if polls is not None:
        out |= {f"{p}_meters_per_min": round(polls.per_min(p)) for p in PROTOCOLS}
        out["missed_cycles"] = polls.missed
    out["mqtt_ratio"] = None if mq is None else round(mq.ratio, 3)
    if polls is not None:
        top = best(trials)
        out |= {
            "dlt645_meters_per_min_at_2400_baud": _at(polls, "dlt645", args.dlt645_baud, 2400),
            "modbus_meters_per_min_at_9600_baud": _at(polls, "modbus", args.modbus_baud, 9600),
            "max_meters_per_min": None if top is None else round(top.per_min),
            "max_fleet_scale": None if top is None else top.scale,
            "headroom_trials": [[t.scale, t.held, round(t.per_min)] for t in trials],
            "dlt645_meters_per_bus": args.dlt645_per_bus,
        }
        for q in PROTOCOLS:
            out[f"{q}_line_limited_per_min"] = _round(polls.line_limited(q))
            out[f"{q}_poll_line_s"] = _round(polls.line_time[q] or None, 3)
            out[f"{q}_poll_took_s"] = _round(polls.meter_time(q), 3)
            out[f"{q}_wire_ratio"] = _round(polls.wire_ratio(q), 3)
        out |= {f"{p}_meters": polls.meters[p] for p in PROTOCOLS}
        out |= {"cycles": polls.cycles, "failed_polls": sum(polls.failed.values())}
        for p in (*PROTOCOLS, None):
            took, name = polls.every(p), f"{p}_cycle" if p else "cycle"
            out[f"{name}_p50_s"] = round(statistics.median(took), 2) if took else None
            out[f"{name}_max_s"] = round(max(took), 2) if took else None
        out |= {
            "collector_cpu_s": round(polls.usage.cpu, 1),
            "collector_peak_rss_mb": round(polls.usage.peak_rss / 2**20, 1),
            "collector_full_gc_max_s": [
                round(max(p, default=0.0), 3) for p in polls.usage.full_gcs[: len(polls.usage.laps)]
            ],
            "collector_gc_s": [
                [round(t, 2) for t in gens]
                for gens in polls.usage.gc_seconds[: len(polls.usage.laps)]
            ],
            "collector_loop_lag_s": [
                [round(x, 3) for x in lap] for lap in polls.usage.lag_figures()
            ],
            "readings_match_polls": polls.verified,
            "collector_cpus": ",".join(str(c) for c in sorted(polls.cpus.measured)),
        }
    if mq is not None:
        out |= {
            "mqtt_broker_msgs_per_s": round(mq.broker_rate),
            "mqtt_ingest_msgs_per_s": round(mq.ingest_rate),
            "mqtt_all_stored": mq.verified,
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


async def trial(base: Settings, args: argparse.Namespace, scale: float) -> Trial:
    """One headroom trial: the fleets ``scale`` times the registered size, one cycle."""
    async with bench_database(base, "meterhub_bench_collect_headroom") as dsn:
        with tempfile.TemporaryDirectory() as tmp:
            settings = base.model_copy(
                update={"database_url": SecretStr(dsn), "spool_dir": Path(tmp) / "spool"}
            )
            return trial_of(scale, await polling_phase(settings, dsn, scaled(args, scale)))


async def run(args: argparse.Namespace) -> dict[str, object]:
    base = get_settings().model_copy(update={"log_level": "WARNING"})
    configure_logging(base)
    polls = mq = None
    trials: list[Trial] = []
    # A safety net only: each phase bounds its own waits.
    searches = math.ceil((args.headroom_max - 1) / args.headroom_step) + args.headroom_bisect
    budget = 300 + args.mqtt_messages / 100 + (args.cycles + 2) * INTERVAL
    budget += searches * 5 * INTERVAL if args.headroom else 0
    try:
        async with (
            asyncio.timeout(budget) as limit,
            bench_database(base, "meterhub_bench_collect") as dsn,
        ):
            with tempfile.TemporaryDirectory() as tmp:
                settings = base.model_copy(
                    update={"database_url": SecretStr(dsn), "spool_dir": Path(tmp) / "spool"}
                )
                if not args.skip_mqtt and (mq := await mqtt_phase(settings, dsn, args)):
                    report_mqtt(mq)
                if not args.skip_polling:
                    polls = await polling_phase(settings, dsn, args)
                    report_polling(polls, args)
            if polls is not None:
                trials = [trial_of(1.0, polls)]
            if polls is not None and args.headroom:
                trials = await search(
                    trials[0],
                    partial(trial, base, args),
                    step=args.headroom_step,
                    most=args.headroom_max,
                    bisect=args.headroom_bisect,
                )
                report_search(trials, most=args.headroom_max)
    except TimeoutError:
        if not limit.expired():
            raise
        raise SystemExit(f"the benchmark did not finish within {budget:.0f} s") from None
    return summary(polls, mq, trials, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run (about 1-2 min: it waits for a tick, then a 2400-baud cycle)",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--modbus", type=int, default=40_000, help="Modbus TCP meters")
    parser.add_argument("--modbus-units", type=int, default=32, help="meters per gateway port")
    parser.add_argument(
        "--modbus-baud", type=int, default=MODBUS_BAUD, help="RTU bus behind each gateway (0: none)"
    )
    parser.add_argument("--dlt645", type=int, default=20_000, help="DL/T 645 meters")
    parser.add_argument("--dlt645-per-bus", type=int, default=24, help="meters per bus (1..32)")
    parser.add_argument("--dlt645-gap-ms", type=float, help="quiet gap between frames (50)")
    parser.add_argument(
        "--dlt645-baud", type=int, default=DLT645_BAUD, help="bus line speed (0: at once)"
    )
    parser.add_argument(
        "--clock-spread",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first clock reads spread over the hour, as `meterhub collect` does",
    )
    parser.add_argument(
        "--headroom",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search for the largest fleet that holds the cycle (off with --quick)",
    )
    parser.add_argument("--headroom-step", type=float, default=0.25, help="fleet added a step")
    parser.add_argument("--headroom-max", type=float, default=4.0, help="largest scale tried")
    parser.add_argument("--headroom-bisect", type=int, default=1, help="halvings after a loss")
    parser.add_argument("--cycles", type=int, default=2, help="1-minute cycles measured")
    parser.add_argument(
        "--cpus", help="CPUs of the collector, e.g. 1 or 2,3 (default the last); fleets: the rest"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="this process's loop"
    )
    parser.add_argument("--mqtt-messages", type=int, default=100_000)
    parser.add_argument("--mqtt-channels", type=int, default=8, help="readings per message")
    parser.add_argument("--skip-mqtt", action="store_true")
    parser.add_argument("--skip-polling", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.modbus, args.dlt645, args.cycles, args.mqtt_messages = 1_000, 320, 1, 2_000
        args.headroom = False
    if min(args.modbus, args.dlt645) < 0 or min(args.cycles, args.mqtt_messages) < 1:
        parser.error("meter counts must be >= 0, cycles and MQTT messages >= 1")
    if not 1 <= args.dlt645_per_bus <= MAX_PER_BUS or min(args.modbus_baud, args.dlt645_baud) < 0:
        parser.error(f"meters per bus must be 1..{MAX_PER_BUS}, baud rates >= 0")
    if args.headroom_step <= 0 or args.headroom_max < 1 or args.headroom_bisect < 0:
        parser.error("headroom step must be > 0, its maximum >= 1, its halvings >= 0")
    # As `meterhub collect` runs: on uvloop's event loop (--loop asyncio: the standard one).
    result = (uvloop.run if args.loop == "uvloop" else asyncio.run)(run(args))
    if args.json:
        print(json.dumps(result))
    if result.get("readings_match_polls") is False or result.get("mqtt_all_stored") is False:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Collector benchmark: meters one collector process polls per minute, and MQTT ingest.

    .venv/bin/python bench/collect.py [--quick] [--json] [--modbus N] [--dlt645 N] [--cycles N]

Polling. The simulated meters run in other processes: `simulators.modbus_fleet` (Modbus TCP
gateway ports, ``--modbus-units`` unit ids behind each) and `simulators.dlt645_fleet` (TCP
transparent gateways, one RS-485 bus of 32 DL/T 645 meters each). Every meter is registered
with a 1-minute poll interval in a throwaway database, and this process runs the real
`Scheduler` (one `LinkWorker` per link on clock-aligned ticks) with the real pollers and a
real `IngestSink` until every link has finished ``--cycles`` cycles. Reported: meters polled
per minute (successful polls in those cycles / the minutes of schedule they took: the
cycles, unless one overran into a later tick), missed cycles (the scheduler's
counter, plus links still in their last cycle when the run gives up), each link's cycle time
from its tick until its readings were committed (p50 / max across links), CPU seconds and
peak RSS of this process (and the simulators' CPU), and a check that the database holds one
reading per successful poll. DL/T 645 buses keep the collector's default quiet gap of 50 ms
between frames (``--dlt645-gap-ms``); the simulated meters answer at once unless
``--dlt645-baud`` adds serial timing.

MQTT. One simulated gateway publishes a backlog of QoS 1 messages that the broker queues for
two persistent sessions: (a) a plain paho subscriber that only counts (paho acks on receipt)
drains its copy: the broker's own delivery rate; (b) `MqttIngestWorker` (defaults of
`meterhub ingest-mqtt`) drains the other into the database, acking each message once
committed: end to end. mqtt_ratio = (b) / (a).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._db import bench_database
from bench._mqtt import MqttFigures, mqtt_phase, report_mqtt
from bench._polling import PollFigures, polling_phase, report_polling
from bench._registry import INTERVAL, PROTOCOLS
from meterhub.logs import configure_logging
from meterhub.settings import get_settings


def summary(polls: PollFigures | None, mq: MqttFigures | None) -> dict[str, object]:
    """The JSON line: the four headline figures first, then the detail behind them."""
    out: dict[str, object] = {}
    if polls is not None:
        out |= {f"{p}_meters_per_min": round(polls.per_min(p)) for p in PROTOCOLS}
        out["missed_cycles"] = polls.missed
    out["mqtt_ratio"] = None if mq is None else round(mq.ratio, 3)
    if polls is not None:
        out |= {f"{p}_meters": polls.meters[p] for p in PROTOCOLS}
        out |= {"cycles": polls.cycles, "failed_polls": sum(polls.failed.values())}
        for p in (*PROTOCOLS, None):
            took, name = polls.every(p), f"{p}_cycle" if p else "cycle"
            out[f"{name}_p50_s"] = round(statistics.median(took), 2) if took else None
            out[f"{name}_max_s"] = round(max(took), 2) if took else None
        out |= {
            "collector_cpu_s": round(polls.usage.cpu, 1),
            "collector_peak_rss_mb": round(polls.usage.peak_rss / 2**20, 1),
            "readings_match_polls": polls.verified,
        }
    if mq is not None:
        out |= {
            "mqtt_broker_msgs_per_s": round(mq.broker_rate),
            "mqtt_ingest_msgs_per_s": round(mq.ingest_rate),
            "mqtt_all_stored": mq.verified,
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    base = get_settings().model_copy(update={"log_level": "WARNING"})
    configure_logging(base)
    polls = mq = None
    # A safety net only: each phase bounds its own waits.
    budget = 300 + args.mqtt_messages / 100 + (args.cycles + 2) * INTERVAL
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
    except TimeoutError:
        if not limit.expired():
            raise
        raise SystemExit(f"the benchmark did not finish within {budget:.0f} s") from None
    return summary(polls, mq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a small run (25-85 s: it waits for a tick)"
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--modbus", type=int, default=20_000, help="Modbus TCP meters")
    parser.add_argument("--modbus-units", type=int, default=32, help="meters per gateway port")
    parser.add_argument("--dlt645", type=int, default=10_000, help="DL/T 645 meters")
    parser.add_argument("--dlt645-gap-ms", type=float, help="quiet gap between frames (50)")
    parser.add_argument("--dlt645-baud", type=int, default=0, help="serial timing (0: none)")
    parser.add_argument("--cycles", type=int, default=2, help="1-minute cycles measured")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    parser.add_argument("--mqtt-messages", type=int, default=100_000)
    parser.add_argument("--mqtt-channels", type=int, default=8, help="readings per message")
    parser.add_argument("--skip-mqtt", action="store_true")
    parser.add_argument("--skip-polling", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.modbus, args.dlt645, args.cycles, args.mqtt_messages = 1_000, 320, 1, 2_000
    if min(args.modbus, args.dlt645) < 0 or min(args.cycles, args.mqtt_messages) < 1:
        parser.error("meter counts must be >= 0, cycles and MQTT messages >= 1")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    if result.get("readings_match_polls") is False or result.get("mqtt_all_stored") is False:
        sys.exit(1)


if __name__ == "__main__":
    main()

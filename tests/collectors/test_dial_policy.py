"""MHUB_COLLECT_NETWORKS: collectors dial only allowed networks, checked at each dial
(a meter written straight into the database is refused too), and nothing leaves."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import orjson
import pytest

from collectors.dlt645.poller import Dlt645Poller
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import ModbusPoller
from collectors.networks import DialPolicy, DialRefusedError, dialled_host
from collectors.scheduler import LinkWorker, ScheduleOptions
from collectors.targets import Poller, PollTarget, load_targets
from collectors.terminals import TerminalBook
from ingest.sink import IngestSink
from meterhub.settings import Settings, parse_networks
from tests import loopback_guard
from tests.support import create_meters

OUTSIDE = "10.20.0.7"


def test_the_setting_is_comma_separated_cidrs_defaulting_to_loopback() -> None:
    assert Settings().collect_network_list == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1"),
    )
    custom = Settings(collect_networks=" 127.0.0.1/32, fd00::/8 ")
    assert [str(n) for n in custom.collect_network_list] == ["127.0.0.1/32", "fd00::/8"]
    with pytest.raises(ValueError, match="MHUB_COLLECT_NETWORKS"):
        Settings(collect_networks="127.0.0.0/8,10.0.0.1/8")  # host bits set: a typo


@pytest.mark.parametrize(
    ("protocol", "address", "host"),
    [
        ("modbus", {"host": OUTSIDE, "port": 502, "unit_id": 1}, OUTSIDE),
        ("dlt645", {"address": "000000000001", "bus": f"tcp://{OUTSIDE}:8899"}, OUTSIDE),
        ("dlt645", {"address": "000000000001", "bus": "dtu://yw-0001"}, None),
        ("dlt645", {"address": "000000000001", "bus": "serial:///dev/ttyUSB0"}, None),
        ("grid-feed", {"feed": "sgcc-yiwu"}, None),
    ],
)
def test_the_dialled_host_of_each_protocol(
    protocol: str, address: dict[str, object], host: str | None
) -> None:
    assert dialled_host(protocol, address) == host


async def test_the_policy_resolves_and_pins() -> None:
    policy = DialPolicy()
    assert await policy.pinned("tcp://127.0.0.1:8899?gap_ms=20") == "tcp://127.0.0.1:8899?gap_ms=20"
    assert await policy.pinned("tcp://[::1]:502") == "tcp://[::1]:502"
    pinned = await policy.pinned("rtu+tcp://localhost:4001")  # a name: the checked address
    assert pinned in ("rtu+tcp://127.0.0.1:4001", "rtu+tcp://[::1]:4001")
    for url in (f"tcp://{OUTSIDE}:8899", "tcp://[2001:db8::1]:502", "tcp://0.0.0.0:1"):
        with pytest.raises(DialRefusedError, match="not in MHUB_COLLECT_NETWORKS"):
            await policy.pinned(url)
    with pytest.raises(DialRefusedError, match="does not resolve"):
        await policy.pinned("tcp://no-such-host.invalid:502")
    with pytest.raises(DialRefusedError, match="not in MHUB_COLLECT_NETWORKS"):
        await DialPolicy(parse_networks("192.0.2.0/24")).pinned("tcp://localhost:502")


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""
    accepted: list[int] = []

    async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, accepted


async def _register(db: asyncpg.Connection, meter_id: int, protocol: str, address: object) -> None:
    await db.execute(  # straight into the database: the registry's check is bypassed
        "UPDATE meters SET protocol = $2, address = $3::jsonb WHERE id = $1",
        meter_id,
        protocol,
        orjson.dumps(address).decode(),
    )


async def _cycle(
    db: asyncpg.Connection, sink: IngestSink, meters: list[int], policy: DialPolicy
) -> dict[int, asyncpg.Record]:
    """One poll of ``meters`` through the scheduler's link workers; their terminal status."""
    book = TerminalBook(offline_after=3, drift_tolerance=timedelta(seconds=30))
    pollers: dict[str, Poller] = {
        "modbus": ModbusPoller(LinkOptions(timeout=0.3, retries=0)),
        "dlt645": Dlt645Poller(timeout=0.3, retries=0),
    }
    links = await load_targets(db, list(pollers))
    ours: list[list[PollTarget]] = [
        [t for t in targets if t.meter_id in meters] for targets in links.values()
    ]
    try:
        for targets in filter(None, ours):
            worker = LinkWorker(
                targets,
                poller=pollers[targets[0].protocol],
                sink=sink,
                book=book,
                options=ScheduleOptions(timeout=0.3, retries=0),
                policy=policy,
            )
            await worker.cycle(targets)
    finally:
        for poller in pollers.values():
            await poller.close()
    await book.flush(db)
    rows = await db.fetch(
        "SELECT meter_id, online, consecutive_failures, last_error FROM terminal_status "
        "WHERE meter_id = ANY($1)",
        meters,
    )
    return {r["meter_id"]: r for r in rows}


@pytest.mark.integration
async def test_a_meter_outside_the_networks_is_never_dialled(
    sink: IngestSink, db: asyncpg.Connection, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    modbus, dlt645, local = await create_meters(db, 3)
    await _register(db, modbus, "modbus", {"host": OUTSIDE, "port": port, "unit_id": 1})
    await _register(
        db, dlt645, "dlt645", {"address": "000000000001", "bus": f"tcp://{OUTSIDE}:{port}"}
    )
    await _register(
        db, local, "dlt645", {"address": "000000000002", "bus": f"tcp://127.0.0.1:{port}"}
    )
    before = len(loopback_guard.ATTEMPTS)

    # Loopback is allowed (the default): only the local meter is dialled.
    status = await _cycle(db, sink, [modbus, dlt645, local], DialPolicy())
    for meter in (modbus, dlt645):
        assert status[meter]["consecutive_failures"] == 1
        assert status[meter]["last_error"] == (
            f"DialRefusedError: {OUTSIDE} is not in MHUB_COLLECT_NETWORKS "
            "(127.0.0.0/8, ::1/128): not dialled"
        )
    assert not any(host == OUTSIDE for host, _ in loopback_guard.ATTEMPTS[before:])
    assert accepted  # the listener does see a dial that happens ...

    # ... and with loopback outside the networks, nothing reaches it.
    accepted.clear()
    before = len(loopback_guard.ATTEMPTS)
    status = await _cycle(db, sink, [local], DialPolicy(parse_networks("192.0.2.0/24")))
    assert status[local]["last_error"].startswith("DialRefusedError: 127.0.0.1 is not in")
    assert "MHUB_COLLECT_NETWORKS (192.0.2.0/24)" in status[local]["last_error"]
    await asyncio.sleep(0.1)
    assert accepted == []
    assert loopback_guard.ATTEMPTS[before:] == [] or all(
        port != p for _, p in loopback_guard.ATTEMPTS[before:]
    )
    assert not await db.fetchval(
        "SELECT count(*) FROM readings WHERE meter_id = ANY($1)", [modbus, dlt645, local]
    )


def test_the_test_suite_cannot_reach_beyond_this_machine() -> None:
    import socket

    with socket.socket() as sock, pytest.raises(loopback_guard.OutboundConnectError):
        sock.connect((OUTSIDE, 9))
    assert loopback_guard.ATTEMPTS[-1] == (OUTSIDE, 9)

"""MHUB_COLLECT_NETWORKS: collectors dial only allowed networks, checked at each dial
(a meter written straight into the database is refused too), and nothing leaves.

Every address here is on loopback: the refusals run under an allow-list of 127.0.0.2 alone,
so 127.0.0.1 (where a listener counts who connects), ::1 and localhost are outside it."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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

#: The allow-list of the refusal tests, and a loopback address outside it.
ALLOWED, OUTSIDE = "127.0.0.2/32", "127.0.0.1"
#: A name whose lookup fails with no query leaving this machine: the IDNA encoder refuses a
#: label past 63 characters (a ``.invalid`` name would ask the configured DNS server).
UNRESOLVABLE = "x" * 64 + ".test"


def test_the_setting_is_comma_separated_cidrs_defaulting_to_loopback() -> None:
    assert Settings().collect_network_list == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1"),
    )
    custom = Settings(collect_networks=" 127.0.0.2/32, ::1/128 ")
    assert [str(n) for n in custom.collect_network_list] == ["127.0.0.2/32", "::1/128"]
    with pytest.raises(ValueError, match="MHUB_COLLECT_NETWORKS"):
        Settings(collect_networks="127.0.0.2/32,127.0.0.1/8")  # host bits set: a typo


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
    with pytest.raises(DialRefusedError, match="not in MHUB_COLLECT_NETWORKS"):
        await policy.pinned("tcp://0.0.0.0:1")  # "any address": never a dial target
    with pytest.raises(DialRefusedError, match="does not resolve"):
        await policy.pinned(f"tcp://{UNRESOLVABLE}:502")
    narrow = DialPolicy(parse_networks(ALLOWED))
    assert await narrow.pinned("tcp://127.0.0.2:8899") == "tcp://127.0.0.2:8899"
    for url in (f"tcp://{OUTSIDE}:8899", "tcp://127.0.0.3:8899", "tcp://[::1]:502"):
        with pytest.raises(
            DialRefusedError, match=r"not in MHUB_COLLECT_NETWORKS \(127\.0\.0\.2/32\)"
        ):
            await narrow.pinned(url)
    with pytest.raises(DialRefusedError, match=r"localhost \(.*\) is not in MHUB_COLLECT_NETWORKS"):
        await narrow.pinned("tcp://localhost:502")  # a name: every address it stands for


ONE_MIN = timedelta(minutes=1)


async def test_a_checked_literal_is_remembered_and_a_refused_one_refused_every_time() -> None:
    narrow = DialPolicy(parse_networks(ALLOWED))
    for _ in range(2):  # the second answer comes from what the first check remembered
        assert await narrow.pinned("tcp://127.0.0.2:8899") == "tcp://127.0.0.2:8899"
        with pytest.raises(DialRefusedError, match="not in MHUB_COLLECT_NETWORKS"):
            await narrow.pinned("tcp://127.0.0.3:8899")
    target = PollTarget(1, "modbus", "tcp://127.0.0.2:8899", {"host": "127.0.0.2"}, None, ONE_MIN)
    assert await narrow.checked(target) is target  # already its checked address: as it is


@dataclass
class Listener:
    """A TCP listener that counts the connections it accepts (and closes them)."""

    host: str
    port: int = 0
    accepted: list[int] = field(default_factory=list)

    def dialled(self, attempts: list[tuple[str, int]]) -> bool:
        """Whether ``attempts`` (of `loopback_guard.ATTEMPTS`) include a connect to it."""
        return (self.host, self.port) in attempts


@asynccontextmanager
async def _listening(host: str) -> AsyncIterator[Listener]:
    listener = Listener(host)

    async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, host, 0)
    listener.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listener


@pytest.fixture
async def listeners() -> AsyncIterator[tuple[Listener, Listener]]:
    """Listeners on 127.0.0.1 (outside `ALLOWED`) and on 127.0.0.2 (inside)."""
    async with _listening(OUTSIDE) as outside, _listening("127.0.0.2") as inside:
        yield outside, inside


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
    sink: IngestSink, db: asyncpg.Connection, listeners: tuple[Listener, Listener]
) -> None:
    outside, inside = listeners
    modbus, dlt645, local = await create_meters(db, 3)
    await _register(db, modbus, "modbus", {"host": OUTSIDE, "port": outside.port, "unit_id": 1})
    bus = f"tcp://{OUTSIDE}:{outside.port}"
    await _register(db, dlt645, "dlt645", {"address": "000000000001", "bus": bus})
    bus = f"tcp://127.0.0.2:{inside.port}"
    await _register(db, local, "dlt645", {"address": "000000000002", "bus": bus})
    before = len(loopback_guard.ATTEMPTS)

    # Only 127.0.0.2 is allowed: the meters at 127.0.0.1 are refused, the one at .2 dialled.
    status = await _cycle(db, sink, [modbus, dlt645, local], DialPolicy(parse_networks(ALLOWED)))
    for meter in (modbus, dlt645):
        assert status[meter]["consecutive_failures"] == 1
        assert status[meter]["last_error"] == (
            f"DialRefusedError: {OUTSIDE} is not in MHUB_COLLECT_NETWORKS ({ALLOWED}): not dialled"
        )
    assert not status[local]["last_error"].startswith("DialRefusedError")
    await asyncio.sleep(0.1)
    assert outside.accepted == []
    assert not outside.dialled(loopback_guard.ATTEMPTS[before:])
    assert inside.accepted and inside.dialled(loopback_guard.ATTEMPTS[before:])

    # The listener at 127.0.0.1 does see a dial once its network is allowed (the default).
    before = len(loopback_guard.ATTEMPTS)
    for meter in (modbus, dlt645):  # one at a time: they share a link, not a protocol
        status = await _cycle(db, sink, [meter], DialPolicy())
        assert not status[meter]["last_error"].startswith("DialRefusedError")
    assert len(outside.accepted) == 2 and outside.dialled(loopback_guard.ATTEMPTS[before:])
    assert not await db.fetchval(
        "SELECT count(*) FROM readings WHERE meter_id = ANY($1)", [modbus, dlt645, local]
    )


def test_the_test_suite_cannot_reach_beyond_this_machine() -> None:
    import socket

    # The first address past loopback's network, computed so that no test holds a literal
    # off this machine: the guard refuses the connect before a packet leaves.
    beyond = str(ipaddress.ip_network("127.0.0.0/8").broadcast_address + 1)
    with socket.socket() as sock, pytest.raises(loopback_guard.OutboundConnectError):
        sock.connect((beyond, 9))
    assert loopback_guard.ATTEMPTS[-1] == (beyond, 9)

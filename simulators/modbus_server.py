"""Simulated Modbus TCP meters: one pymodbus server per port, many unit ids behind it.

Each unit id is a meter of some `MeterModel`; its registers are computed when a request
arrives, from a value provider ``(unit_id, now) -> {field: value}`` through the model's
`encode_points`, so values follow the clock. A fault hook ``(unit_id, now) -> Fault``
makes a meter stay silent, answer late, answer garbage or refuse; an offline hook
``(now) -> bool`` drops the gateway's connections. Unit ids not configured never answer,
as on a real bus. With a ``line`` (`simulators.line_speed.modbus_rtu`) the gateway's RS-485
side runs at line speed: one request on the bus at a time, each RTU frame (unit id, PDU,
CRC) taking its time on the wire, with the inter-frame gaps and the meter's turnaround.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, cast

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from collectors.modbus import EncodeError, MeterModel, Point, encode_points, plan_blocks
from meterhub.logs import get_logger
from simulators.line_speed import LineTiming

ValueProvider = Callable[[int, datetime], Mapping[str, float]]
OfflineHook = Callable[[datetime], bool]
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Fault:
    """How one request to one meter misbehaves; build with the class methods."""

    silent: bool = False
    delay: float = 0.0
    override: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    exception_code: int | None = None

    @classmethod
    def no_answer(cls) -> Fault:
        return cls(silent=True)

    @classmethod
    def late(cls, seconds: float) -> Fault:
        return cls(delay=seconds)

    @classmethod
    def garbage(cls, values: Mapping[str, float]) -> Fault:
        """Replace fields, e.g. ``{"power": math.nan, "energy": 1e12}`` (NaN: float32 only)."""
        return cls(override=MappingProxyType(dict(values)))

    @classmethod
    def refuse(cls, exception_code: int) -> Fault:
        """Answer with a Modbus exception, e.g. 11 as a gateway whose meter is silent."""
        return cls(exception_code=exception_code)


FaultHook = Callable[[int, datetime], Fault | None]


@dataclass(frozen=True, slots=True)
class LinearProvider:
    """Default values: constant voltage and power per meter, energy growing linearly.

    Meter ``u`` draws ``1 + u % 50`` kW, and its energy is ``energy0 + u`` kWh at `epoch`.

    Example::

        LinearProvider()(7, datetime.now(UTC))["power"]  # 8.0
    """

    epoch: datetime = field(default_factory=lambda: datetime.now(UTC))
    energy0: float = 1000.0
    voltage: float = 230.0
    power_factor: float = 0.95

    def __call__(self, unit_id: int, now: datetime) -> dict[str, float]:
        kw = 1.0 + unit_id % 50
        amps = kw * 1000 / (3 * self.voltage * self.power_factor)
        hours = max((now - self.epoch).total_seconds(), 0.0) / 3600
        values = {"energy": self.energy0 + unit_id + kw * hours, "power": kw}
        values |= dict.fromkeys(("voltage_a", "voltage_b", "voltage_c"), self.voltage)
        values |= dict.fromkeys(("current_a", "current_b", "current_c"), amps)
        return values | {"power_factor": self.power_factor}


class _Layout:
    """A model's registers per function code: the readable spans and the points in them."""

    def __init__(self, model: MeterModel) -> None:
        self.model = model
        self.spans: dict[int, list[tuple[int, int]]] = {}
        for block in plan_blocks(model):
            spans = self.spans.setdefault(block.function_code, [])
            if spans and spans[-1][1] == block.address:
                spans[-1] = (spans[-1][0], block.address + block.count)
            else:
                spans.append((block.address, block.address + block.count))
        self.points: dict[int, tuple[Point, ...]] = {
            fc: tuple(p for p in model.points if p.function_code == fc) for fc in self.spans
        }

    def registers(
        self, fc: int, address: int, *, count: int, values: Mapping[str, float]
    ) -> list[int] | ExcCodes:
        stop = address + count
        if fc not in (3, 4):
            return ExcCodes.ILLEGAL_FUNCTION
        if count > self.model.max_registers:
            return ExcCodes.ILLEGAL_VALUE
        if not any(a <= address and stop <= b for a, b in self.spans.get(fc, ())):
            return ExcCodes.ILLEGAL_ADDRESS
        inside = [p for p in self.points[fc] if p.address < stop and p.end > address]
        wanted = {p.field: values[p.field] for p in inside if p.field in values}
        words = [0] * count
        for (_, at), point_words in encode_points(self.model, wanted).items():
            for i, word in enumerate(point_words, start=at - address):
                if 0 <= i < count:
                    words[i] = word
        return words


class _MeterStore(ModbusServerContext):
    """pymodbus's datastore interface over the simulated meters (read-only)."""

    def __init__(self, meters: Mapping[int, _Layout], sim: ModbusMeterSimulator) -> None:
        # The base class holds SimDevice register memory; these meters compute theirs.
        self.old_simulator, self.simdevices = True, []
        self.meters, self.sim = meters, sim

    async def async_getValues(  # noqa: N802 (pymodbus's datastore interface)
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | ExcCodes:
        sim = self.sim
        sim.requests[device_id] += 1
        if (layout := self.meters.get(device_id)) is None:
            raise NoSuchIdException(f"no meter {device_id}")  # the server stays silent
        now = datetime.now(UTC)
        fault = sim.faults(device_id, now) if sim.faults else None
        if fault is not None and fault.silent:
            raise NoSuchIdException(f"meter {device_id} is silent")
        values = sim.provider(device_id, now)  # sampled on arrival, even if answered late
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.exception_code is not None:
                return ExcCodes(fault.exception_code)
            values = {**values, **fault.override}
        try:
            return layout.registers(func_code, address, count=count, values=values)
        except EncodeError as exc:
            _log.warning("simulated meter cannot encode its values", unit_id=device_id, error=exc)
            return ExcCodes.DEVICE_FAILURE

    async def async_setValues(  # noqa: N802
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        return ExcCodes.ILLEGAL_FUNCTION

    def device_ids(self) -> list[int]:
        return list(self.meters)


class _Handler(ServerRequestHandler):
    """pymodbus's per-connection handler, made safe for late answers.

    pymodbus reads ``self.last_pdu`` again after the datastore returns, so a reply delayed
    past the next request would go out under that request's transaction id; here each
    request keeps its own PDU, and the task answering it is tracked for `stop`.
    """

    server: _Server

    def handle_later(self) -> None:
        if (pdu := self.last_pdu) is not None:
            self.server.sim._spawn(self._answer(pdu, self.last_addr))

    async def _answer(self, pdu: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        sim = self.server.sim
        if sim.offline is not None and sim.offline(datetime.now(UTC)):
            self.close()  # gateway offline: drop the connection without an answer
            return
        if sim.line is None:
            await self._respond(pdu, addr)
            return
        async with sim.bus:  # the gateway's RS-485 side: one request at a time
            await asyncio.sleep(sim.line.request(_rtu_size(pdu)))
            await self._respond(pdu, addr, line=sim.line)

    async def _respond(
        self, pdu: ModbusPDU, addr: tuple[Any, ...] | None, *, line: LineTiming | None = None
    ) -> None:
        try:
            response = await pdu.datastore_update(self.server.store, pdu.dev_id)
        except NoSuchIdException:
            return
        except Exception:  # as pymodbus does: a failing datastore answers "device failure"
            _log.exception("simulated meter failed", unit_id=pdu.dev_id)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id, response.dev_id = pdu.transaction_id, pdu.dev_id
        if line is not None:
            await asyncio.sleep(line.frame(_rtu_size(response)))
        if self.transport:
            self.pdu_send(response, addr=addr)
        if line is not None:
            await asyncio.sleep(line.gap)  # silence before the next request's frame


def _rtu_size(pdu: ModbusPDU) -> int:
    """Bytes of ``pdu`` as an RTU frame: unit id, function code, data, CRC."""
    return 1 + 1 + len(pdu.encode()) + 2


class _Server(ModbusTcpServer):
    def __init__(self, sim: ModbusMeterSimulator, store: _MeterStore, framer: FramerType) -> None:
        address = (sim.host, sim.port)
        super().__init__(store, framer=framer, address=address, ignore_missing_devices=True)
        self.sim, self.store = sim, store

    def callback_new_connection(self) -> _Handler:
        handler = _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)  # type: ignore[no-untyped-call]
        return handler


class ModbusMeterSimulator:
    """Meters ``{unit_id: model}`` behind one TCP port, as a Modbus TCP gateway would be.

    ``requests`` counts the requests each unit id received (answered or not). `framing`
    "rtu" serves RTU frames over TCP (a transparent serial gateway). ``line`` puts the
    meters on an RS-485 bus at line speed behind the gateway (None: they answer at once).
    Port 0 picks a free port at the first `start`; later starts reuse it. A gateway offline
    by `offline` accepts connections but drops each on its first request; `stop` makes it
    refuse them.

    Example::

        async with ModbusMeterSimulator({1: load_model("eastron_sdm630")}) as sim:
            print(sim.url)  # tcp://127.0.0.1:40123
    """

    def __init__(
        self,
        meters: Mapping[int, MeterModel],
        *,
        provider: ValueProvider | None = None,
        faults: FaultHook | None = None,
        offline: OfflineHook | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        framing: Literal["socket", "rtu"] = "socket",
        line: LineTiming | None = None,
    ) -> None:
        if bad := [u for u in meters if not 1 <= u <= 247]:
            raise ValueError(f"unit ids must be 1..247, got {bad[:5]}")
        layouts = {model: _Layout(model) for model in set(meters.values())}
        self._store = _MeterStore({u: layouts[m] for u, m in meters.items()}, self)
        self.provider: ValueProvider = provider or LinearProvider()
        self.faults, self.offline = faults, offline
        self.host, self.port, self.framing = host, port, framing
        self.line = line
        #: Held while a request and its reply are on the gateway's RS-485 side (with `line`).
        self.bus = asyncio.Lock()
        self.requests: Counter[int] = Counter()
        self._server: _Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        scheme = "tcp" if self.framing == "socket" else "rtu+tcp"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (again); raises `OSError` when the port is taken."""
        if self._server is not None:
            return
        framer = FramerType.SOCKET if self.framing == "socket" else FramerType.RTU
        server = _Server(self, self._store, framer)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}") from exc
        listener = cast(asyncio.Server, server.transport)
        self.port = listener.sockets[0].getsockname()[1]
        self._server = server

    async def stop(self) -> None:
        """Stop listening, drop every connection and abandon pending answers."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

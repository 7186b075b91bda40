"""One simulated DL/T 645 meter on an RS-485 bus: its replies, its faults, its values.

Values come from a `ValueProvider` ``(address, di, now) -> value`` keyed by 2007 DI:
`LinearProvider` is a simple default, `ReadingProvider` wraps anything that returns a
`Reading` (the simulator core's ``snapshot``). Faults live in a mutable `MeterFaults`,
changeable mid-test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.dlt645.codec import Frame, Function
from collectors.dlt645.commands import encode_address_reply, encode_error_reply, encode_reply
from collectors.dlt645.errors import MeterErrorWord, UnknownIdentifierError, ValueFormatError
from collectors.dlt645.identifiers import Kind, Version, lookup
from collectors.dlt645.values import MeterDate, Value, encode_value
from meterhub.reading import LOCAL_TZ, Reading

__all__ = ["Dlt645Meter", "LinearProvider", "MeterFaults", "ReadingProvider", "ValueProvider"]

#: ``(address, di, now) -> value``: the value of 2007 identifier ``di`` at the meter's
#: time ``now``, in `collectors.dlt645.values.Value` form; None answers NO_DATA.
ValueProvider = Callable[[str, int, dt.datetime], Value | None]


@dataclass(frozen=True, slots=True)
class LinearProvider:
    """A constant load of ``power`` kW since ``epoch`` on every meter; tariffs take fixed
    shares of the total (valley the rest); the meter clock reads ``now``.

    Meters differ by their start: ``start_energy + int(address) % 1000`` kWh. Phase
    voltages are ``voltage``, +1 V, +2 V. Example::

        >>> LinearProvider()("000000000001", 0x00010000, LinearProvider().epoch)
        1001.0
    """

    epoch: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=LOCAL_TZ)
    power: float = 12.5
    start_energy: float = 1000.0
    voltage: float = 230.0
    power_factor: float = 0.95
    shares: tuple[float, float, float] = (0.1, 0.3, 0.35)

    def energies(self, address: str, now: dt.datetime) -> tuple[float, ...]:
        """Total, sharp, peak, flat and valley registers (kWh) at ``now``."""
        hours = (now - self.epoch).total_seconds() / 3600
        total = round((self.start_energy + int(address) % 1000 + self.power * hours) % 1e6, 2)
        parts = [round(total * share, 2) for share in self.shares]
        return (total, *parts, round(total - sum(parts), 2))

    def __call__(self, address: str, di: int, now: dt.datetime) -> Value | None:
        local = now.astimezone(LOCAL_TZ)
        energies = self.energies(address, now)
        volts = tuple(round(self.voltage + phase, 1) for phase in range(3))
        amps = tuple(round(self.power * 1000 / 3 / (v * self.power_factor), 3) for v in volts)
        table: dict[int, Value] = {
            0x00000000: energies[0],
            0x0001FF00: energies,
            0x00020000: 0.0,
            0x0201FF00: volts,
            0x0202FF00: amps,
            0x02030000: self.power,
            0x02060000: self.power_factor,
            0x04000101: MeterDate(local.date(), local.isoweekday() % 7),
            0x04000102: local.time().replace(microsecond=0, tzinfo=None),
            0x04000306: 1,
            0x04000307: 1,
        }
        for index, energy in enumerate(energies):
            table[0x00010000 + 0x100 * index] = energy
        for index, (volt, amp) in enumerate(zip(volts, amps, strict=True)):
            table[0x02010100 + 0x100 * index] = volt
            table[0x02020100 + 0x100 * index] = amp
        return table.get(di)


@dataclass(frozen=True, slots=True)
class ReadingProvider:
    """Adapts ``reading_at(address, now) -> Reading`` (such as the simulator core's
    ``SimulatedMeter.snapshot``) to a `ValueProvider`, through the identifier table's
    `Reading` field names; date and time come from ``Reading.ts`` (the meter's clock).

    Example: ``ReadingProvider(lambda address, now: fleet[address].snapshot(now))``.
    """

    reading_at: Callable[[str, dt.datetime], Reading]

    def __call__(self, address: str, di: int, now: dt.datetime) -> Value | None:
        try:
            row = lookup(di)
        except UnknownIdentifierError:
            return None
        if row.kind in (Kind.DATE, Kind.TIME):
            local = self.reading_at(address, now).ts.astimezone(LOCAL_TZ)
            if row.kind is Kind.DATE:
                return MeterDate(local.date(), local.isoweekday() % 7)
            return local.time().replace(microsecond=0, tzinfo=None)
        if not row.fields:
            return None
        reading = self.reading_at(address, now)
        values = [getattr(reading, name) for name in row.fields]
        if any(value is None for value in values):
            return None
        return tuple(values) if row.count > 1 else values[0]


@dataclass(slots=True)
class MeterFaults:
    """How a meter misbehaves; everything off by default.

    ``late_answer`` adds seconds before the reply; ``garbage_values`` sends value bytes
    that are not BCD (0xFF); ``no_data`` lists 2007 DIs answered with error word NO_DATA.
    """

    no_answer: bool = False
    late_answer: float = 0.0
    corrupt_checksum: bool = False
    garbage_values: bool = False
    no_data: frozenset[int] = frozenset()


@dataclass(slots=True)
class Dlt645Meter:
    """A meter at ``address``; ``reply_delay`` is its turnaround (s), ``clock_offset`` how
    far (s) its clock runs ahead, and values longer than ``max_frame_data`` bytes are sent
    as a 0xB1 reply and 0x12 follow-ups."""

    address: str
    faults: MeterFaults = field(default_factory=MeterFaults)
    reply_delay: float = 0.0
    clock_offset: float = 0.0
    max_frame_data: int | None = None
    _followups: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    def respond(self, request: Frame, now: dt.datetime, provider: ValueProvider) -> bytes | None:
        """The reply bytes to ``request`` (already addressed to this meter), or None."""
        if self.faults.no_answer:
            return None
        function = request.control.function
        if function == Function.READ_ADDRESS:
            reply = encode_address_reply(self.address)
        elif function in (Function.READ, Function.READ_1997):
            version: Version = 2007 if function == Function.READ else 1997
            meter_now = now + dt.timedelta(seconds=self.clock_offset)
            reply = self._read(request.data, meter_now, provider, version)
        elif function == Function.READ_FOLLOWUP:
            reply = self._followup(request.data)
        else:
            return None
        if self.faults.corrupt_checksum:
            reply = reply[:-2] + bytes((reply[-2] ^ 0x5A, reply[-1]))
        return reply

    def _error(self, word: MeterErrorWord, version: Version = 2007) -> bytes:
        return encode_error_reply(self.address, word, version=version)

    def _read(
        self, data: bytes, now: dt.datetime, provider: ValueProvider, version: Version
    ) -> bytes:
        width = 4 if version == 2007 else 2
        if len(data) != width:
            return self._error(MeterErrorWord.OTHER, version)
        wire = int.from_bytes(data, "little")
        try:
            di = lookup(wire, version=version).di
        except UnknownIdentifierError:
            return self._error(MeterErrorWord.NO_DATA, version)
        value = None if di in self.faults.no_data else provider(self.address, di, now)
        if value is None:
            return self._error(MeterErrorWord.NO_DATA, version)
        try:
            value_bytes = encode_value(wire, value, version=version)
        except ValueFormatError:  # NaN, out of range: the meter sends garbage, not an error
            value_bytes = b"\xff" * lookup(wire, version=version).size(version)
        if self.faults.garbage_values:
            value_bytes = b"\xff" * len(value_bytes)
        limit = self.max_frame_data
        if version == 1997 or limit is None or len(value_bytes) <= limit:
            return encode_reply(self.address, wire, value_bytes, version=version)
        chunks = [value_bytes[i : i + limit] for i in range(0, len(value_bytes), limit)]
        self._followups[wire] = chunks[1:]
        return encode_reply(self.address, wire, chunks[0], more=True)

    def _followup(self, data: bytes) -> bytes:
        if len(data) != 5:
            return self._error(MeterErrorWord.OTHER)
        wire, seq = int.from_bytes(data[:4], "little"), data[4]
        chunks = self._followups.get(wire, [])
        if not 1 <= seq <= len(chunks):
            return self._error(MeterErrorWord.NO_DATA)
        more = seq < len(chunks)
        return encode_reply(self.address, wire, chunks[seq - 1], more=more, seq=seq)

"""Serial line timing of an RS-485 bus: how long frames take on the wire at a baud rate.

Pure arithmetic, shared by the simulated buses (`simulators.dlt645_gateway`,
`simulators.modbus_server`) and the collector benchmark's "line-limited capacity".

* DL/T 645-2007: 8E1, 11 bits a character (start, 8 data, even parity, stop); the field's
  usual rate is 2400 baud. A meter answers 20 ms to 500 ms after a request (the standard's
  response delay): the default turnaround is its minimum, 20 ms. No inter-frame gap is
  prescribed (the preamble FE bytes wake the receivers); the collector keeps its own quiet
  gap between frames (`collectors.dlt645.bus.DEFAULT_GAP`).
* Modbus RTU (over serial line, V1.02): 11 bits a character too, since the specification's
  default is even parity (8E1) and without parity it asks for two stop bits (8N2); 8N1,
  common in the field though not conforming, would be 10 bits and about 9 % faster. Frames
  are separated by at least 3.5 character times of silence (fixed at 1.75 ms above 19200
  baud). The default turnaround, 10 ms, is a typical meter's; the standard names none.

Example::

    line = modbus_rtu(9600)
    line.exchange(8, 9)  # a 2-register read: request, gap, turnaround, reply, gap (s)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DLT645_BAUD",
    "DLT645_TURNAROUND",
    "MODBUS_BAUD",
    "MODBUS_TURNAROUND",
    "LineTiming",
    "dlt645_line",
    "modbus_rtu",
]

#: The usual rates in the field: DL/T 645 meters at 2400 baud, Modbus RTU at 9600.
DLT645_BAUD, MODBUS_BAUD = 2400, 9600
#: Seconds a meter takes to start its reply (DL/T 645: the standard's 20 ms minimum).
DLT645_TURNAROUND, MODBUS_TURNAROUND = 0.020, 0.010
#: Modbus RTU above 19200 baud: fixed inter-frame silence (s) instead of 3.5 characters.
_FAST_RTU_GAP = 0.00175


@dataclass(frozen=True, slots=True)
class LineTiming:
    """A serial line at ``baud`` with ``bits`` per character, ``gap`` s of enforced
    silence after every frame and a slave that starts answering ``turnaround`` s after a
    request has ended (after the gap).

    Example::

        LineTiming(2400, bits=11).frame(16)  # 0.0733 s: a DL/T 645 read request
    """

    baud: int
    bits: int = 11
    gap: float = 0.0
    turnaround: float = 0.0

    def __post_init__(self) -> None:
        if self.baud <= 0 or self.bits <= 0 or min(self.gap, self.turnaround) < 0:
            raise ValueError(f"baud and bits must be > 0, gap and turnaround >= 0: {self}")

    @property
    def char_time(self) -> float:
        """Seconds one character takes on the wire."""
        return self.bits / self.baud

    def frame(self, size: int) -> float:
        """Seconds a frame of ``size`` bytes takes on the wire (without the gap)."""
        if size < 0:
            raise ValueError(f"a frame cannot have {size} bytes")
        return size * self.char_time

    def request(self, size: int) -> float:
        """From the first byte of a request to the first byte of its reply: the frame, the
        gap after it and the slave's turnaround."""
        return self.frame(size) + self.gap + self.turnaround

    def reply(self, size: int) -> float:
        """A reply of ``size`` bytes and the silence after it, before the next request."""
        return self.frame(size) + self.gap

    def exchange(self, request: int, reply: int) -> float:
        """One request and its reply, gaps and turnaround included: the least time the bus
        is busy with it."""
        return self.request(request) + self.reply(reply)


def dlt645_line(baud: int = DLT645_BAUD, *, turnaround: float = DLT645_TURNAROUND) -> LineTiming:
    """A DL/T 645 bus: 8E1 (11 bits), no prescribed gap, ``turnaround`` s to answer."""
    return LineTiming(baud, bits=11, gap=0.0, turnaround=turnaround)


def modbus_rtu(baud: int = MODBUS_BAUD, *, turnaround: float = MODBUS_TURNAROUND) -> LineTiming:
    """A Modbus RTU bus: 8E1 (11 bits), 3.5 characters of silence after each frame
    (1.75 ms above 19200 baud), ``turnaround`` s to answer.

    Example: ``modbus_rtu(9600).gap`` is 0.00401 s.
    """
    gap = 3.5 * 11 / baud if 0 < baud <= 19200 else _FAST_RTU_GAP
    return LineTiming(baud, bits=11, gap=gap, turnaround=turnaround)

"""The one table of DL/T 645 data identifiers this project reads, with their BCD formats.

A DI is written as an int in DI3..DI0 order (``0x00010000``); on the wire it travels DI0
first. 1997 identifiers are 2-byte ints (``0x9010``). Each row names the `Reading` fields
its value fills (none, one, or one per element of a block).

Signs follow DL/T 645-2007 Appendix A: combined active energy, current, power and power
factor carry the sign in the top bit of their most significant byte (0 positive,
1 negative), so their magnitude is limited to 79.., e.g. 799.999 A. Every 1997 format is
taken as unsigned, and its sizes (voltage XXX V, current XX.XX A) are unconfirmed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from .errors import UnknownIdentifierError

__all__ = ["IDENTIFIERS", "BcdFormat", "Identifier", "Kind", "Version", "lookup"]

#: The protocol edition: 2007 (4-byte DIs, read 0x11) or 1997 (2-byte DIs, read 0x01).
Version = Literal[1997, 2007]


class Kind(enum.Enum):
    """What a value decodes to."""

    NUMBER = "number"  # float, scaled by the format's decimals
    INTEGER = "integer"  # int (ratios, counters)
    DATE = "date"  # YYMMDDWW -> MeterDate
    TIME = "time"  # hhmmss -> datetime.time


@dataclass(frozen=True, slots=True)
class BcdFormat:
    """One BCD value: ``size`` bytes, ``decimals`` implied decimal places, a sign bit or not."""

    size: int
    decimals: int = 0
    signed: bool = False
    unit: str = ""

    @property
    def digits(self) -> int:
        """Decimal digits available for the magnitude (one less nibble of range if signed)."""
        return self.size * 2

    @property
    def max_scaled(self) -> int:
        """The largest magnitude as a scaled integer: 99999999, or 79999999 if signed."""
        lower_digits: int = 10 ** (self.digits - 1)
        return (8 if self.signed else 10) * lower_digits - 1


@dataclass(frozen=True, slots=True)
class Identifier:
    """A row of the table; ``fmt_1997`` is set only where 1997 encodes the value differently."""

    di: int
    di_1997: int | None
    name: str
    fmt: BcdFormat
    fmt_1997: BcdFormat | None = None
    fields: tuple[str, ...] = ()
    kind: Kind = Kind.NUMBER
    count: int = 1

    def format_for(self, version: Version) -> BcdFormat:
        if version == 1997 and self.fmt_1997 is not None:
            return self.fmt_1997
        return self.fmt

    def size(self, version: Version = 2007) -> int:
        """Bytes of the value part of a reply (all elements of a block)."""
        return self.format_for(version).size * self.count


_E = BcdFormat(4, 2, unit="kWh")  # XXXXXX.XX
_E_SIGNED = BcdFormat(4, 2, signed=True, unit="kWh")
_V = BcdFormat(2, 1, unit="V")  # XXX.X
_V97 = BcdFormat(2, 0, unit="V")  # XXX
_I = BcdFormat(3, 3, signed=True, unit="A")  # XXX.XXX
_I97 = BcdFormat(2, 2, unit="A")  # XX.XX
_P = BcdFormat(3, 4, signed=True, unit="kW")  # XX.XXXX
_P97 = BcdFormat(3, 4, unit="kW")
_PF = BcdFormat(2, 3, signed=True)  # X.XXX
_PF97 = BcdFormat(2, 3)
_ENERGIES = ("energy", "energy_sharp", "energy_peak", "energy_flat", "energy_valley")
_VOLTAGES = ("voltage_a", "voltage_b", "voltage_c")
_CURRENTS = ("current_a", "current_b", "current_c")

#: Every identifier the codec knows, in 2007 DI order. Tariffs 1-4 are sharp, peak, flat,
#: valley (尖峰平谷), as `meterhub.reading.TARIFFS`; the energy block assumes 4 tariffs.
IDENTIFIERS: tuple[Identifier, ...] = (
    Identifier(0x00000000, None, "combined active total energy", _E_SIGNED),
    Identifier(0x00010000, 0x9010, "forward active total energy", _E, None, _ENERGIES[:1]),
    Identifier(0x00010100, 0x9011, "forward active energy, tariff 1", _E, None, ("energy_sharp",)),
    Identifier(0x00010200, 0x9012, "forward active energy, tariff 2", _E, None, ("energy_peak",)),
    Identifier(0x00010300, 0x9013, "forward active energy, tariff 3", _E, None, ("energy_flat",)),
    Identifier(0x00010400, 0x9014, "forward active energy, tariff 4", _E, None, ("energy_valley",)),
    Identifier(0x0001FF00, 0x901F, "forward active energy block", _E, None, _ENERGIES, count=5),
    Identifier(0x00020000, 0x9020, "reverse active total energy", _E),
    Identifier(0x02010100, 0xB611, "voltage phase A", _V, _V97, ("voltage_a",)),
    Identifier(0x02010200, 0xB612, "voltage phase B", _V, _V97, ("voltage_b",)),
    Identifier(0x02010300, 0xB613, "voltage phase C", _V, _V97, ("voltage_c",)),
    Identifier(0x0201FF00, 0xB61F, "voltage block A/B/C", _V, _V97, _VOLTAGES, count=3),
    Identifier(0x02020100, 0xB621, "current phase A", _I, _I97, ("current_a",)),
    Identifier(0x02020200, 0xB622, "current phase B", _I, _I97, ("current_b",)),
    Identifier(0x02020300, 0xB623, "current phase C", _I, _I97, ("current_c",)),
    Identifier(0x0202FF00, 0xB62F, "current block A/B/C", _I, _I97, _CURRENTS, count=3),
    Identifier(0x02030000, 0xB630, "total active power", _P, _P97, ("power",)),
    Identifier(0x02060000, 0xB650, "total power factor", _PF, _PF97, ("power_factor",)),
    Identifier(0x04000101, 0xC010, "date and weekday YYMMDDWW", BcdFormat(4), kind=Kind.DATE),
    Identifier(0x04000102, 0xC011, "time hhmmss", BcdFormat(3), kind=Kind.TIME),
    Identifier(0x04000306, None, "CT ratio", BcdFormat(3), kind=Kind.INTEGER),
    Identifier(0x04000307, None, "PT ratio", BcdFormat(3), kind=Kind.INTEGER),
)

_BY_VERSION: dict[int, dict[int, Identifier]] = {
    2007: {row.di: row for row in IDENTIFIERS},
    1997: {row.di_1997: row for row in IDENTIFIERS if row.di_1997 is not None},
}


def lookup(di: int, *, version: Version = 2007) -> Identifier:
    """The table row of a data identifier; `UnknownIdentifierError` if it has none.

    Example::

        >>> lookup(0x00010000).fields
        ('energy',)
    """
    row = _BY_VERSION.get(version, {}).get(di)
    if row is None:
        width = 4 if version == 1997 else 8
        raise UnknownIdentifierError(f"unknown DL/T 645-{version} data identifier {di:0{width}X}")
    return row

"""A whole simulated city as one validated `CityConfig`; `simulators.city_file.load_city`
and `write_city` read and write it as one TOML file, `simulators.city.generate_city` makes one.

Schema (times are TOML offset date-times, e.g. ``2026-01-05T08:00:00+08:00``; water and gas
meters speak modbus or mqtt with ct = pt = 1; after a replacement the new meter answers at
the same address)::

    seed = 42                       # every simulated value derives from it
    name = "yiwu-demo"              # optional
    start = 2026-01-05T00:00:00+08:00  # optional: nominal start of the simulation
    tou = "tables/tou.toml"         # optional: TOU table, relative to this file; default Zhejiang

    [[gateways]]                    # a TCP gateway in front of an RS-485 bus, or an MQTT gateway
    id = "dlt-001"                  # unique
    protocol = "dlt645"             # "modbus" | "dlt645" | "mqtt"
    host = "127.0.0.1"              # modbus/dlt645: where the simulated gateway listens
    port = 16020                    # modbus/dlt645 only; (host, port) unique
    [[gateways.faults]]             # only gateway_offline (start, end, probability)
    kind = "gateway_offline"

    [[firms]]
    credit_code = "91330782MA2B3C4D5X"  # valid GB 32100 code, unique
    name = "义乌市华鑫饰品有限公司"
    industry = "C2438"              # GB/T 4754 class code
    town = "苏溪镇"
    land_mu = 12.5                  # optional
    above_scale = true              # optional, default false
    tags = ["d-class"]              # optional
    shift = "one"                   # optional: "one" | "two" | "three" (default: by industry)
    weekend = "sunday_off"          # optional: "sunday_off" | "saturday_half" | "seven_days"
    expect = ["suspected_stoppage"] # optional: the rules (alerts/rules.toml) it is built to
                                    #   trigger; documentation for tests and the demo
    output = { kwh_per_10k_yuan = 180.0, base_kwh = 12000.0 }  # optional: monthly figures
    [[firms.lists]]                 # optional, any number; also [[firms.projects]] and
    list = "high_energy"            #   [[firms.classes]]: see simulators.firm_data
    since = 2025-01-01

    [[firms.meters]]
    id = 1                          # unique positive int; seeds the meter's values
    code = "YW-E-000001"            # asset number, unique (replacement codes included)
    utility = "electricity"         # "electricity" | "water" | "gas"
    protocol = "dlt645"             # "modbus" | "dlt645" | "mqtt" | "grid-feed"
    model = "DTSD341"               # modbus: a collectors/modbus model name
    address = { gateway = "dlt-001", address = "202401000001" }
      # modbus: { gateway, unit_id (1-247) }   dlt645: { gateway, address (12 digits) }
      # mqtt: { gateway, channel (>= 1) }      grid-feed: { feed }
      # unique per gateway (unit id, channel); DL/T 645 addresses unique city-wide
    installed_at = 2025-10-01T10:00:00+08:00
    rated_power = 630.0             # primary-side max: kW, or m3/h for water and gas
    ct = 10.0                       # optional, default 1 (water/gas: 1)
    pt = 100.0                      # optional, default 1 (water/gas: 1)
    load_factor = 0.55              # optional: full production as a fraction of rated_power
    standby = 0.07                  # optional: idle load as a fraction, < load_factor
    initial_energy = 1234.56        # optional: register at installation (secondary side)
    rollover = 1000000.0            # optional: the register wraps to 0 here
    resolution = 0.01               # optional: register step
    [[firms.meters.faults]]         # any number; start, end, probability: see simulators.faults
    kind = "late_answer"            # no_answer | late_answer (delay) | corrupt_checksum |
    probability = 0.1               #   garbage_values | clock_drift (seconds_per_day) | stoppage
    delay = 3.0                     #   | rollover (at, margin) | replacement (at, new_code, ...)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn

from meterhub import uscc
from meterhub.reading import Utility
from simulators.errors import CityConfigError
from simulators.faults import Fault, FaultSet, GatewayOffline, Replacement, Rollover, derive_key
from simulators.firm_data import ClassSpec, ListSpec, OutputSpec, ProjectSpec, check_firm_data
from simulators.industry import Shift, Weekend
from simulators.tariff import TouTable, load_tou

GatewayProtocol = Literal["modbus", "dlt645", "mqtt"]
Protocol = Literal["modbus", "dlt645", "mqtt", "grid-feed"]
_INDUSTRY_RE = re.compile(r"[A-T]([0-9]{2}([0-9]{1,2})?)?")  # as the firms table checks it
_DLT645_RE = re.compile(r"[0-9]{12}")


@dataclass(frozen=True, slots=True)
class ModbusAddress:
    gateway: str
    unit_id: int  # 1-247


@dataclass(frozen=True, slots=True)
class Dlt645Address:
    gateway: str
    address: str  # 12 decimal digits, as printed on the meter


@dataclass(frozen=True, slots=True)
class MqttAddress:
    gateway: str
    channel: int  # >= 1


@dataclass(frozen=True, slots=True)
class GridFeedAddress:
    feed: str


MeterAddress = ModbusAddress | Dlt645Address | MqttAddress | GridFeedAddress
#: The address type each protocol uses.
ADDRESS_TYPES: dict[str, type[MeterAddress]] = {
    "modbus": ModbusAddress,
    "dlt645": Dlt645Address,
    "mqtt": MqttAddress,
    "grid-feed": GridFeedAddress,
}


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """A simulated gateway; ``port`` is set for modbus and dlt645, ``None`` for mqtt."""

    id: str
    protocol: GatewayProtocol
    host: str = "127.0.0.1"
    port: int | None = None
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSpec:
    """One metering point. ``rated_power`` is primary-side (kW, or m3/h for water and gas);
    `max_power` is the registry's secondary-side rating, ``rated_power / multiplier``."""

    id: int
    code: str
    utility: Utility
    protocol: Protocol
    address: MeterAddress
    model: str
    installed_at: datetime
    rated_power: float
    ct: float = 1.0
    pt: float = 1.0
    load_factor: float = 0.5
    standby: float = 0.07
    initial_energy: float = 0.0
    rollover: float = 1_000_000.0
    resolution: float = 0.01
    faults: tuple[Fault, ...] = ()

    @property
    def multiplier(self) -> float:
        return self.ct * self.pt

    @property
    def max_power(self) -> float:
        return self.rated_power / self.multiplier

    @property
    def gateway(self) -> str | None:
        return None if isinstance(self.address, GridFeedAddress) else self.address.gateway

    def replacement_codes(self) -> list[str]:
        """Codes of the meters that replace this one over time (``<code>-R<n>`` by default)."""
        swaps = sorted((f for f in self.faults if isinstance(f, Replacement)), key=lambda r: r.at)
        return [r.new_code or f"{self.code}-R{n}" for n, r in enumerate(swaps, 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmSpec:
    """A firm; ``shift`` and ``weekend`` override its industry's defaults when set.
    ``output``, ``lists``, ``projects`` and ``classes`` are what it reports besides its
    meters (`simulators.firm_data`); ``expect`` names the rules it is built to trigger."""

    credit_code: str
    name: str
    industry: str
    town: str
    land_mu: float | None = None
    above_scale: bool = False
    tags: tuple[str, ...] = ()
    shift: Shift | None = None
    weekend: Weekend | None = None
    expect: tuple[str, ...] = ()
    output: OutputSpec | None = None
    lists: tuple[ListSpec, ...] = ()
    projects: tuple[ProjectSpec, ...] = ()
    classes: tuple[ClassSpec, ...] = ()
    meters: tuple[MeterSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CityConfig:
    """A whole simulated city; construction validates it (raises `CityConfigError`).

    Example::

        city = load_city("city.toml")  # simulators.city_file
        for firm, meter in city.meters():
            print(firm.name, meter.code, city.registry_address(meter))
    """

    seed: int
    name: str = "simulated city"
    start: datetime | None = None
    tou: str | None = None  # path of a TOU table; None: the bundled Zhejiang table
    gateways: tuple[GatewaySpec, ...] = ()
    firms: tuple[FirmSpec, ...] = ()

    def __post_init__(self) -> None:
        _check_city(self)

    def meters(self) -> Iterator[tuple[FirmSpec, MeterSpec]]:
        """Every (firm, meter) pair, in file order."""
        for firm in self.firms:
            for meter in firm.meters:
                yield firm, meter

    def meters_on(self, gateway_id: str) -> list[tuple[FirmSpec, MeterSpec]]:
        """The (firm, meter) pairs behind gateway ``gateway_id``."""
        return [(f, m) for f, m in self.meters() if m.gateway == gateway_id]

    def gateway(self, gateway_id: str) -> GatewaySpec:
        for gateway in self.gateways:
            if gateway.id == gateway_id:
                return gateway
        raise CityConfigError(f"no gateway {gateway_id!r} in city {self.name!r}")

    def gateway_faults(self, gateway_id: str) -> FaultSet:
        """Faults of a gateway: ``city.gateway_faults(gid).active(GatewayOffline, ts)``."""
        faults = self.gateway(gateway_id).faults
        return FaultSet(faults, key=derive_key(self.seed, f"gateway:{gateway_id}"))

    def tou_table(self) -> TouTable:
        return load_tou(self.tou)

    def registry_address(self, meter: MeterSpec) -> dict[str, object]:
        """The registry's ``meters.address`` JSON for ``meter`` (see migration 0001)."""
        match meter.address:
            case ModbusAddress(gateway=gid, unit_id=unit):
                gateway = self.gateway(gid)
                return {"host": gateway.host, "port": gateway.port, "unit_id": unit}
            case Dlt645Address(gateway=gid, address=address):
                return {"address": address, "bus": gid}
            case MqttAddress(gateway=gid, channel=channel):
                return {"gateway_id": gid, "channel": channel}
            case GridFeedAddress(feed=feed):
                return {"feed": feed}


def _fail(message: str) -> NoReturn:
    raise CityConfigError(message)


def _duplicates(values: list[object]) -> list[object]:
    return [v for v, n in Counter(values).items() if n > 1]


def _check_city(city: CityConfig) -> None:
    if isinstance(city.seed, bool) or not isinstance(city.seed, int):
        _fail(f"seed must be an integer, got {city.seed!r}")
    for g in city.gateways:
        if (g.port is None) != (g.protocol == "mqtt"):
            _fail(f"gateway {g.id}: modbus and dlt645 gateways need a port, mqtt ones none")
        if g.port is not None and not 0 < g.port < 65536:
            _fail(f"gateway {g.id}: port {g.port} out of range")
        if any(not isinstance(f, GatewayOffline) for f in g.faults):
            _fail(f"gateway {g.id}: only gateway_offline faults apply to gateways")
    for firm in city.firms:
        if not uscc.is_valid(firm.credit_code):
            _fail(f"firm {firm.name!r}: invalid credit code {firm.credit_code!r}")
        if not _INDUSTRY_RE.fullmatch(firm.industry):
            _fail(f"firm {firm.name!r}: {firm.industry!r} is not a GB/T 4754 code like C2438")
        if not firm.name or not firm.town or (firm.land_mu is not None and firm.land_mu < 0):
            _fail(f"firm {firm.credit_code}: needs a name, a town and land_mu >= 0")
        check_firm_data(
            f"firm {firm.credit_code}", firm.output, firm.lists, firm.projects, firm.classes
        )
    gateways = {g.id: g for g in city.gateways}
    meters = [m for _, m in city.meters()]
    for meter in meters:
        _check_meter(meter, gateways)
    unique: dict[str, list[object]] = {
        "gateway ids": [g.id for g in city.gateways],
        "gateway (host, port)": [(g.host, g.port) for g in city.gateways if g.port is not None],
        "credit codes": [f.credit_code for f in city.firms],
        "meter ids": [m.id for m in meters],
        "meter codes": [c for m in meters for c in (m.code, *m.replacement_codes())],
        "addresses": [m.address for m in meters if not isinstance(m.address, GridFeedAddress)],
        "DL/T 645 addresses": [
            a.address for m in meters if isinstance(a := m.address, Dlt645Address)
        ],
    }
    for what, values in unique.items():
        if dup := _duplicates(values):
            _fail(f"{what} used twice: {dup[:5]}")


def _check_meter(m: MeterSpec, gateways: dict[str, GatewaySpec]) -> None:
    where = f"meter {m.code!r}"
    if isinstance(m.id, bool) or not isinstance(m.id, int) or m.id <= 0 or not m.code:
        _fail(f"{where}: needs a positive integer id and a code")
    if type(m.address) is not ADDRESS_TYPES.get(m.protocol):
        _fail(f"{where}: protocol {m.protocol!r} does not take {m.address!r}")
    if m.utility is not Utility.ELECTRICITY and (
        m.protocol not in ("modbus", "mqtt") or m.multiplier != 1
    ):
        _fail(f"{where}: water and gas meters speak modbus or mqtt and have ct = pt = 1")
    gid = m.gateway
    if gid is not None and (gid not in gateways or gateways[gid].protocol != m.protocol):
        _fail(f"{where}: no {m.protocol} gateway {gid!r}")
    match m.address:
        case ModbusAddress(unit_id=unit) if not 1 <= unit <= 247:
            _fail(f"{where}: Modbus unit id {unit} not in 1..247")
        case Dlt645Address(address=address) if not _DLT645_RE.fullmatch(address):
            _fail(f"{where}: DL/T 645 address {address!r} is not 12 digits")
        case MqttAddress(channel=channel) if channel < 1:
            _fail(f"{where}: MQTT channel {channel} < 1")
    if m.installed_at.tzinfo is None:
        _fail(f"{where}: installed_at needs a UTC offset")
    if not (m.rated_power > 0 and m.ct > 0 and m.pt > 0 and m.rollover > 0):
        _fail(f"{where}: rated_power, ct, pt and rollover must be positive")
    if not 0 <= m.standby < m.load_factor <= 1:
        _fail(f"{where}: need 0 <= standby < load_factor <= 1")
    if not (0 <= m.initial_energy < m.rollover and 0 < m.resolution <= 1):
        _fail(f"{where}: need 0 <= initial_energy < rollover and 0 < resolution <= 1")
    for fault in m.faults:
        if isinstance(fault, GatewayOffline):
            _fail(f"{where}: gateway_offline belongs to a gateway")
        if isinstance(fault, Replacement | Rollover) and fault.at < m.installed_at:
            _fail(f"{where}: {fault.kind} at {fault.at} is before installation")

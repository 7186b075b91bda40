"""A realistic random city for the simulators: Yiwu towns, "4+X" industries, valid credit
codes, transformer-sized meters with CT/PT, gateways and a sprinkle of faults.

Example::

    city = generate_city(firms=500, seed=7)
    write_city(city, "city.toml")  # simulators.city_file
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Final

from collectors.modbus import list_models
from meterhub.reading import LOCAL_TZ, Utility
from meterhub.uscc import ALPHABET, check_character
from simulators.city_output import output_spec, quiet_extras
from simulators.config import (
    CityConfig,
    Dlt645Address,
    FirmSpec,
    GatewayProtocol,
    GatewaySpec,
    GridFeedAddress,
    MeterAddress,
    MeterSpec,
    ModbusAddress,
    MqttAddress,
    Protocol,
)
from simulators.faults import (
    ClockDrift,
    CorruptChecksum,
    Fault,
    GarbageValues,
    GatewayOffline,
    LateAnswer,
    NoAnswer,
    Replacement,
    Rollover,
    Stoppage,
)
from simulators.industry import INDUSTRIES, IndustryProfile
from simulators.plans import plant

#: Yiwu's 8 streets (街道) and 6 towns (镇) by their short names, as the registry's towns
#: table (migrations/0006_towns.sql) names them.
TOWNS: Final = (
    *("稠城", "北苑", "稠江", "江东", "后宅", "城西", "廿三里", "福田"),
    *("佛堂", "赤岸", "义亭", "上溪", "大陈", "苏溪"),
)
DEFAULT_START: Final = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)
_SYLLABLES: Final = "华鑫恒金佳浩瑞丰盛源宏泰隆兴达美嘉锦伟新宇凯博诚信和旺鸿昌明正天创优百益"
_KVA: Final = (50, 80, 100, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000, 2500)
_CT_PRIMARY: Final = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 600, 800)
_CT_PRIMARY_LV: Final = (*_CT_PRIMARY, 1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000)
_PROTOCOLS: Final[tuple[tuple[Protocol, float], ...]] = (
    ("dlt645", 0.55),
    ("modbus", 0.25),
    ("mqtt", 0.12),
    ("grid-feed", 0.08),
)
_PLAIN_KVA: Final = 4000  # most transformer capacity of a plain firm in a planted city
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation-code check


def _org_check(code8: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(code8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


@dataclass
class _Builder:
    """The generator's running state: the random stream, gateways, what is already taken."""

    rng: random.Random
    start: datetime
    fault_rate: float
    bus_size: int
    host: str
    ports: dict[str, int]  # next free port per bus protocol
    industries: tuple[IndustryProfile, ...] = ()
    history_days: int = 0  # meters are installed 30-60 days before the history starts
    planted: bool = False
    gateways: list[GatewaySpec] = field(default_factory=list)
    fill: dict[str, tuple[str, int]] = field(default_factory=dict)  # newest gateway, meters on it
    taken: set[str] = field(default_factory=set)
    next_id: int = 1

    def unique(self, make: Callable[[], str]) -> str:
        while (value := make()) in self.taken:
            pass
        self.taken.add(value)
        return value

    def credit_code(self) -> str:
        def make() -> str:
            org = "MA" + "".join(self.rng.choice(ALPHABET) for _ in range(6))
            body = "91330782" + org + _org_check(org)  # 91: enterprise; 330782: Yiwu
            return body + check_character(body)

        return self.unique(make)

    def firm_name(self, industry: IndustryProfile, big: bool) -> str:
        suffix = "股份有限公司" if big else "有限公司"
        pick = self.rng.sample
        return self.unique(lambda: f"义乌市{''.join(pick(_SYLLABLES, 2))}{industry.label}{suffix}")

    def when(self, lo_days: float, hi_days: float) -> datetime:
        """A time between ``start + lo_days`` and ``start + hi_days``, on the minute."""
        offset = timedelta(days=self.rng.uniform(lo_days, hi_days))
        return (self.start + offset).replace(second=0, microsecond=0)

    def gateway(self, protocol: GatewayProtocol, *, firm: int) -> tuple[str, int]:
        """(gateway id, position on it) for the next meter of ``protocol``; MQTT gateways
        belong to one firm, bus gateways fill up to ``bus_size`` meters."""
        key = f"mqtt-{firm:04d}" if protocol == "mqtt" else protocol
        gid, count = self.fill.get(key, ("", 0))
        if count == 0 or (protocol != "mqtt" and count >= self.bus_size):
            port = None
            gid = key
            if protocol != "mqtt":
                number = sum(g.protocol == protocol for g in self.gateways) + 1
                gid = f"{'dlt' if protocol == 'dlt645' else 'mb'}-{number:03d}"
                port = self.ports[protocol]
                self.ports[protocol] += 1
            self.gateways.append(GatewaySpec(gid, protocol, self.host, port))
            count = 0
        self.fill[key] = (gid, count + 1)
        return gid, count + 1

    def address(self, protocol: Protocol, *, firm: int) -> MeterAddress:
        if protocol == "grid-feed":
            return GridFeedAddress("sgcc-yiwu")
        gid, position = self.gateway(protocol, firm=firm)
        if protocol == "modbus":
            return ModbusAddress(gid, position)
        if protocol == "mqtt":
            return MqttAddress(gid, position)
        year = self.start.year - 1
        return Dlt645Address(gid, self.unique(lambda: f"{year}{self.rng.randrange(10**8):08d}"))

    def meter(
        self, utility: Utility, protocol: Protocol, *, firm: int, rated: float, model: str,
        ct: float = 1.0, pt: float = 1.0,
    ) -> MeterSpec:  # fmt: skip
        number, self.next_id = self.next_id, self.next_id + 1
        hours = self.rng.uniform(0, 6000)  # full-load hours before installation
        return MeterSpec(
            id=number,
            code=f"YW-{utility.value[0].upper()}-{number:06d}",
            utility=utility,
            protocol=protocol,
            address=self.address(protocol, firm=firm),
            model=model,
            installed_at=(
                self.when(-self.history_days - 60, -self.history_days - 30)
                if self.history_days
                else self.when(-120, -60)
            ),
            rated_power=rated,
            ct=ct,
            pt=pt,
            load_factor=round(self.rng.uniform(0.35, 0.7), 3),
            standby=round(self.rng.uniform(0.05, 0.10), 3),
            initial_energy=round(min(rated / (ct * pt) * hours, 900_000.0), 2),
        )

    def electricity(self, kva: int, *, firm: int) -> MeterSpec:
        protocol = self.rng.choices([p for p, _ in _PROTOCOLS], [w for _, w in _PROTOCOLS])[0]
        if kva >= 630:  # metered on the 10 kV side: 10000/100 V PT, x/5 A CT
            amps = 1.2 * kva / (math.sqrt(3) * 10)
            ct, pt, model = next(c for c in _CT_PRIMARY if c >= amps) / 5, 100.0, "DSSD331"
        elif kva >= 100:  # low-voltage side behind a CT
            amps = 1.2 * kva / (math.sqrt(3) * 0.4)
            ct, pt, model = next(c for c in _CT_PRIMARY_LV if c >= amps) / 5, 1.0, "DTSD341"
        else:
            ct, pt, model = 1.0, 1.0, "DTZY341"
        if protocol == "modbus":
            model = self.rng.choice(list_models())
        return self.meter(
            Utility.ELECTRICITY, protocol, firm=firm, rated=kva * 0.9, model=model, ct=ct, pt=pt
        )

    def faults(self, meter: MeterSpec) -> tuple[Fault, ...]:
        """Sometimes one fault for ``meter``; ``fault_rate`` is the chance."""
        rng = self.rng
        if rng.random() >= self.fault_rate:
            return ()
        kinds = ["late", "none", "garbage", "drift", "rollover", "replacement"]
        kinds += ["checksum"] * (meter.protocol in ("modbus", "dlt645"))
        p = round(rng.uniform(0.01, 0.2), 3)
        match rng.choice(kinds):
            case "late":
                return (LateAnswer(probability=p, delay=round(rng.uniform(1, 5), 1)),)
            case "none":
                return (NoAnswer(probability=p),)
            case "garbage":
                return (GarbageValues(probability=p / 4),)
            case "drift":
                return (ClockDrift(seconds_per_day=round(rng.uniform(-20, 20), 1)),)
            case "rollover":
                return (Rollover(at=self.when(1, 20), margin=round(rng.uniform(5, 50), 2)),)
            case "replacement":
                return (Replacement(at=self.when(2, 50)),)
            case _:
                return (CorruptChecksum(probability=p),)

    def firm(self, index: int) -> FirmSpec:
        rng = self.rng
        profiles = list(self.industries or INDUSTRIES.values())
        industry = rng.choices(profiles, [p.weight for p in profiles])[0]
        land = round(min(300.0, max(1.0, math.exp(rng.gauss(2.3, 0.8)))), 2)
        demand = land * industry.kw_per_mu * rng.uniform(0.6, 1.4)
        if self.planted:  # plain firms stay under the two-high threshold without a project
            demand = min(demand, _PLAIN_KVA)
        kvas: list[int] = []
        while demand > 0:  # one transformer (and meter) per 2500 kVA
            kvas.append(next(k for k in _KVA if k >= min(demand, _KVA[-1])))
            demand -= kvas[-1]
        meters = [self.electricity(kva, firm=index) for kva in kvas]
        for utility, chance, per_mu, model in (
            (Utility.WATER, industry.water, 0.3, "LXSG-50E"),  # placeholder model names
            (Utility.GAS, industry.gas, 1.0, "LLQ-80"),
        ):
            if rng.random() < chance:
                rated = round(max(2.0, land * per_mu * rng.uniform(0.5, 2.0)), 1)
                meters.append(self.meter(utility, "mqtt", firm=index, rated=rated, model=model))
        big = sum(kvas) >= 1000
        tags = ["high-energy"] * big + ["d-class"] * (rng.random() < 0.08)
        if big and industry.code in ("C1713", "C3360", "C3825") and rng.random() < 0.5:
            tags.append("two-high")
        if not self.planted and rng.random() < self.fault_rate / 2:  # stops a few days
            begin = self.when(3, 50).replace(hour=0, minute=0)
            stop = Stoppage(start=begin, end=begin + timedelta(days=rng.randint(1, 5)))
            meters = [replace(m, faults=(stop,)) for m in meters]
        return FirmSpec(
            credit_code=self.credit_code(),
            name=self.firm_name(industry, big),
            industry=industry.code,
            town=rng.choice(TOWNS),
            land_mu=land,
            above_scale=big or rng.random() < min(0.9, 0.15 + land / 40),
            tags=tuple(tags),
            meters=tuple(replace(m, faults=m.faults + self.faults(m)) for m in meters),
        )

    def planted_firm(self, firm: FirmSpec, extra: random.Random, year: int) -> FirmSpec:
        """A plain firm of a planted city: tags only from its (empty) lists, the odd
        official class and older project, figures that follow its energy."""
        firm = replace(firm, tags=(), output=output_spec(extra, firm))
        return quiet_extras(extra, firm, year=year)

    def outages(self) -> None:
        """Give some bus gateways an offline window of a few hours."""
        for index, gateway in enumerate(self.gateways):
            if self.rng.random() < 2 * self.fault_rate:
                begin = self.when(1, 50)
                end = begin + timedelta(hours=self.rng.uniform(1, 6))
                outage = GatewayOffline(start=begin, end=end.replace(second=0, microsecond=0))
                self.gateways[index] = replace(gateway, faults=(outage,))


def generate_city(
    *,
    firms: int,
    seed: int,
    start: datetime = DEFAULT_START,
    fault_rate: float = 0.05,
    bus_size: int = 16,
    host: str = "127.0.0.1",
    modbus_port: int = 15020,
    dlt645_port: int = 16020,
    industries: Collection[str] | None = None,
    history_months: int = 0,
    plant_week: date | None = None,
) -> CityConfig:
    """A random but reproducible city of ``firms`` firms (same arguments, same city).

    Meters are installed 60-120 days before ``start`` (with ``history_months``, 1-2
    months before that many months before it); faults (a share ``fault_rate`` of
    meters, half that of firms stopping, twice that of gateways going offline) fall within
    50 days after it. Bus gateways take ``bus_size`` meters each on consecutive ports.
    ``industries`` limits the GB/T 4754 codes (default: all of `INDUSTRIES`). Every firm
    gets an output spec (monthly figures following its electricity).

    With ``plant_week`` (a Monday), firms are built to trigger each rule in that week
    (`simulators.plans`, about one per hundred firms and rule, at least one) and the
    others to trigger none: no random firm stoppages, plain firms under 4,000 kVA, no
    lists; their random meter faults may still show as data-quality findings.
    """
    if firms < 0 or not 0 <= fault_rate <= 1 or not 1 <= bus_size <= 247 or history_months < 0:
        raise ValueError("need firms >= 0, 0 <= fault_rate <= 1 and 1 <= bus_size <= 247")
    if plant_week is not None and plant_week.isoweekday() != 1:
        raise ValueError(f"plant_week {plant_week} is not a Monday")
    unknown = sorted(set(industries or ()) - set(INDUSTRIES))
    if unknown:
        raise ValueError(f"unknown industries {unknown}; known: {sorted(INDUSTRIES)}")
    builder = _Builder(
        rng=random.Random(seed),
        start=start,
        fault_rate=fault_rate,
        bus_size=bus_size,
        host=host,
        ports={"modbus": modbus_port, "dlt645": dlt645_port},
        industries=tuple(INDUSTRIES[c] for c in industries or ()),
        history_days=round(history_months * 30.44),
        planted=plant_week is not None,
    )
    # Output specs, plans and extras draw from their own stream: the meters of a city are
    # the same with or without them.
    extra = random.Random(f"{seed}:figures")
    specs = [builder.firm(index) for index in range(1, firms + 1)]
    if plant_week is None:
        specs = [replace(f, output=output_spec(extra, f)) for f in specs]
    else:
        specs = [builder.planted_firm(f, extra, plant_week.year) for f in specs]
        specs = plant(extra, specs, week=plant_week, copies=max(1, firms // 100))
    builder.outages()
    return CityConfig(
        seed=seed,
        name=f"yiwu-sim-{seed}",
        start=start,
        gateways=tuple(builder.gateways),
        firms=tuple(specs),
    )

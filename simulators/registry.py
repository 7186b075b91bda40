"""Putting a city into the registry: firms by credit code, meters by asset number (upserts).

Registering a second city into the same registry can take over its asset numbers or
addresses (generated cities all number meters ``YW-E-000001`` ... and MQTT gateways
``mqtt-0001`` ...): the summary lists those (``moved``, ``clashes``). Use one city per
registry, or cities made with different numbering.

Each physical meter is one row (a ``replacement`` fault makes two: the old one closed at
the swap, the new one opened then and pointing at it with ``replaces_meter_id``). Only
what has happened by ``as_of`` is written: a meter installed later is left out, a removal
later is left open; registering again later adds them. Addresses are what the collectors
read (`registry_address`); ``max_power`` is the meter-side rating. Firms and meters go
through the registry's own upserts (`registry.firms.upsert_firm`,
`registry.meters.upsert_meter`), so a city's towns are checked like any other firm's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import orjson

from registry.firms import FirmIn, upsert_firm
from registry.meters import MeterFields, upsert_meter
from registry.towns import TownNames, town_names
from simulators.config import CityConfig, Dlt645Address, FirmSpec, MeterSpec
from simulators.meter import SimulatedMeter, build_meters


@dataclass(slots=True)
class RegistrySummary:
    """Counts of what `register_city` did; meter counts are keyed by protocol."""

    firms: Counter[str] = field(default_factory=Counter)  # added, changed, unchanged
    meters: dict[str, Counter[str]] = field(default_factory=dict)  # + "later"
    meter_ids: dict[str, int] = field(default_factory=dict)  # asset number -> registry id
    #: Asset numbers that were registered to a firm of another city (now moved to ours).
    moved: list[str] = field(default_factory=list)
    #: Meters of another city at one of our addresses (same gateway channel, bus address...).
    clashes: list[str] = field(default_factory=list)

    def count(self, protocol: str, what: str) -> None:
        self.meters.setdefault(protocol, Counter())[what] += 1


def registry_address(city: CityConfig, meter: MeterSpec) -> dict[str, object]:
    """The ``meters.address`` the collectors read for ``meter``.

    As `CityConfig.registry_address`, except that a DL/T 645 meter's ``bus`` is its
    gateway's URL (``tcp://host:port``), which the poll scheduler connects to.
    """
    address = city.registry_address(meter)
    if isinstance(meter.address, Dlt645Address):
        gateway = city.gateway(meter.address.gateway)
        address["bus"] = f"tcp://{gateway.host}:{gateway.port}"
    return address


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


async def _firm(
    conn: asyncpg.Connection, firm: FirmSpec, towns: TownNames, summary: RegistrySummary
) -> int:
    record = FirmIn(
        credit_code=firm.credit_code,
        name=firm.name,
        industry=firm.industry,
        town=firm.town,
        land_mu=None if firm.land_mu is None else _decimal(firm.land_mu),
        above_scale=firm.above_scale,
        tags=list(firm.tags),
    )
    firm_id, outcome = await upsert_firm(conn, record, towns=towns)
    summary.firms[outcome] += 1
    return firm_id


async def _meter(
    conn: asyncpg.Connection,
    meter: SimulatedMeter,
    *,
    city: CityConfig,
    firm_id: int,
    as_of: datetime,
    poll_interval: timedelta,
    summary: RegistrySummary,
) -> None:
    spec = meter.spec
    address = registry_address(city, spec)
    previous: int | None = None
    for install in meter.installations:
        if install.installed_at > as_of:
            summary.count(spec.protocol, "later")
            continue
        removed = install.removed_at if install.removed_at and install.removed_at <= as_of else None
        record = MeterFields(
            firm_id=firm_id,
            code=install.code,
            utility=spec.utility.value,
            protocol=spec.protocol,
            address=address,
            model=spec.model,
            ct_ratio=_decimal(spec.ct),
            pt_ratio=_decimal(spec.pt),
            rollover=_decimal(spec.rollover),
            max_power=_decimal(spec.max_power),
            poll_interval_s=int(poll_interval.total_seconds()),
            installed_at=install.installed_at,
        )
        meter_id, outcome = await upsert_meter(
            conn, record, removed_at=removed, replaces_meter_id=previous
        )
        summary.count(spec.protocol, outcome)
        summary.meter_ids[install.code] = previous = meter_id


async def register_city(
    conn: asyncpg.Connection,
    city: CityConfig,
    *,
    as_of: datetime,
    poll_interval: timedelta = timedelta(minutes=15),
) -> RegistrySummary:
    """Upsert the city's firms and meters as of ``as_of``, in one transaction.

    Example::

        summary = await register_city(conn, load_city("city.toml"), as_of=wall_clock())
        summary.meters["dlt645"]["added"]  # 55
    """
    summary = RegistrySummary()
    meters = {m.spec.code: m for m in build_meters(city)}
    async with conn.transaction():
        await _foreign(conn, city, meters.values(), summary)
        towns = await town_names(conn)
        for firm in city.firms:
            firm_id = await _firm(conn, firm, towns, summary)
            for spec in firm.meters:
                await _meter(
                    conn,
                    meters[spec.code],
                    city=city,
                    firm_id=firm_id,
                    as_of=as_of,
                    poll_interval=poll_interval,
                    summary=summary,
                )
    return summary


async def _foreign(
    conn: asyncpg.Connection,
    city: CityConfig,
    meters: Iterable[SimulatedMeter],
    summary: RegistrySummary,
) -> None:
    """Note what of the registry this city would take over from another one."""
    owner = {i.code: m.firm.credit_code for m in meters for i in m.installations}
    rows = await conn.fetch(
        "SELECT m.code, f.credit_code FROM meters m JOIN firms f ON f.id = m.firm_id "
        "WHERE m.code = ANY($1::text[])",
        list(owner),
    )
    summary.moved = sorted(r["code"] for r in rows if r["credit_code"] != owner[r["code"]])
    addresses = [
        orjson.dumps(registry_address(city, spec)).decode()
        for _, spec in city.meters()
        if spec.protocol != "grid-feed"
    ]
    rows = await conn.fetch(
        "SELECT code, address FROM meters WHERE removed_at IS NULL AND protocol <> 'grid-feed' "
        "AND address = ANY($1::jsonb[]) AND NOT code = ANY($2::text[]) ORDER BY code",
        addresses,
        list(owner),
    )
    summary.clashes = [f"{r['code']} at {r['address']}" for r in rows]


async def meter_ids(conn: asyncpg.Connection, codes: list[str]) -> dict[str, int]:
    """Registry ids of the meters with these asset numbers (unknown ones left out)."""
    rows = await conn.fetch("SELECT code, id FROM meters WHERE code = ANY($1::text[])", codes)
    return {row["code"]: int(row["id"]) for row in rows}

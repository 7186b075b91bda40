"""Meters: registration, listing, replacement as one operation, and the upsert that puts a
generated city's meters into the registry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import BaseModel, Field, model_validator

from collectors.modbus.register_map import list_models
from collectors.networks import SETTING, DialPolicy, DialRefusedError, dialled_host
from meterhub.db import Conn
from registry import audit, meter_history
from registry.errors import AddressNotAllowedError, ConflictError, InvalidError, NotFoundError
from registry.fields import Instant, Int64, JsonObject, Text
from registry.keys import Principal
from registry.meter_history import Replacement as Replacement  # re-exported: the API and tests

Protocol = Literal["modbus", "dlt645", "mqtt", "grid-feed"]
#: A DL/T 645 meter's address as registered: its 12 decimal digits (the table's CHECK too).
DLT645_ADDRESS = re.compile(r"[0-9]{12}")
UtilityName = Literal["electricity", "water", "gas"]
_ADDRESS_KEYS: dict[str, tuple[str, ...]] = {
    "modbus": ("host", "port", "unit_id"),
    "dlt645": ("address",),
    "mqtt": ("gateway_id", "channel"),
    "grid-feed": ("feed",),
}


class MeterFields(BaseModel):
    firm_id: Int64
    code: Text = Field(
        min_length=1,
        description="asset number / the grid feed's meter number",
        examples=["330782-0001"],
    )
    utility: UtilityName = "electricity"
    protocol: Protocol
    address: JsonObject = Field(
        description="modbus: host, port, unit_id (and model); dlt645: address (12 digits) and "
        "bus (tcp://host:port, dtu://id or serial:///dev/ttyUSB0); mqtt: gateway_id, channel; "
        "grid-feed: feed",
        examples=[{"address": "000102030425", "bus": "tcp://127.0.0.1:8899"}],
    )
    model: Text | None = Field(default=None, examples=["chint_dtsu666"])
    ct_ratio: Decimal = Field(default=Decimal(1), gt=0)
    pt_ratio: Decimal = Field(default=Decimal(1), gt=0)
    rollover: Decimal = Field(default=Decimal(1_000_000), gt=0)
    max_power: Decimal = Field(
        default=Decimal(1000), gt=0, description="kW (m3/h for water and gas), meter side"
    )
    poll_interval_s: int = Field(
        default=900, ge=60, le=31 * 86_400, description="polling interval, seconds"
    )
    installed_at: Instant


def address_problem(protocol: Protocol, address: dict[str, Any]) -> str | None:
    """Why ``address`` does not fit ``protocol`` as a new address (None: it fits)."""
    missing = [k for k in _ADDRESS_KEYS[protocol] if k not in address]
    if missing:
        return f"a {protocol} address needs {', '.join(missing)}"
    number = address.get("address")
    if protocol == "dlt645" and not DLT645_ADDRESS.fullmatch(str(number)):
        return (
            f"a dlt645 address is the meter's 12-digit number (e.g. 000102030425), not {number!r}"
        )
    return None


class MeterIn(MeterFields):
    """A meter to register; its address must fit its protocol."""

    @model_validator(mode="after")
    def _address_fits_protocol(self) -> MeterIn:
        if (problem := address_problem(self.protocol, self.address)) is not None:
            raise ValueError(problem)
        if self.installed_at.tzinfo is None:
            raise ValueError("installed_at needs a UTC offset")
        return self


class Meter(MeterFields):
    """A registered meter as stored (registered long ago under older rules, perhaps)."""

    id: int
    unit: str
    multiplier: Decimal
    removed_at: datetime | None = None
    replaces_meter_id: int | None = None


_SELECT = """
SELECT id, firm_id, code, utility, unit, protocol, address, model, ct_ratio, pt_ratio,
       multiplier, rollover, max_power, extract(epoch FROM poll_interval)::int AS poll_interval_s,
       installed_at, removed_at, replaces_meter_id
FROM meters
"""


def _meter(row: asyncpg.Record) -> Meter:
    values = dict(row)
    values["address"] = orjson.loads(values["address"])
    return Meter(**values)


async def get_meter(conn: Conn | asyncpg.Pool, meter_id: int) -> Meter:
    row = await conn.fetchrow(_SELECT + " WHERE id = $1", meter_id)
    if row is None:
        raise NotFoundError(f"no meter {meter_id}")
    return _meter(row)


async def list_meters(
    conn: asyncpg.Pool,
    *,
    firm_id: int | None,
    town: str | None,
    active: bool,
    limit: int,
    offset: int,
) -> list[Meter]:
    """Meters of ``firm_id`` and of the firms in ``town`` (None: any), by id."""
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::bigint IS NULL OR firm_id = $1) "
        "AND ($2::text IS NULL OR firm_id IN (SELECT id FROM firms WHERE town = $2)) "
        "AND (NOT $3 OR removed_at IS NULL) ORDER BY id LIMIT $4 OFFSET $5",
        firm_id,
        town,
        active,
        limit,
        offset,
    )
    return [_meter(r) for r in rows]


async def _insert(conn: Conn, meter: MeterFields, replaces: int | None) -> int:
    try:
        meter_id: int = await conn.fetchval(
            "INSERT INTO meters (firm_id, code, utility, protocol, address, model, ct_ratio, "
            "pt_ratio, rollover, max_power, poll_interval, installed_at, replaces_meter_id) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, make_interval(secs => $11),"
            " $12, $13) RETURNING id",
            meter.firm_id,
            meter.code,
            meter.utility,
            meter.protocol,
            orjson.dumps(meter.address).decode(),
            meter.model,
            meter.ct_ratio,
            meter.pt_ratio,
            meter.rollover,
            meter.max_power,
            meter.poll_interval_s,
            meter.installed_at,
            replaces,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConflictError(f"meter code {meter.code} is taken") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidError(f"no firm {meter.firm_id}") from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidError(f"the meter does not pass the registry's checks: {exc}") from exc
    return meter_id


async def check_address(protocol: str, address: dict[str, Any], *, policy: DialPolicy) -> None:
    """`AddressNotAllowedError` if a collector would dial ``address`` outside the policy's
    networks (``MHUB_COLLECT_NETWORKS``); a host name is resolved and all its addresses
    must be inside."""
    host = dialled_host(protocol, address)
    if host is None:
        return
    allowed = [str(n) for n in policy.networks]
    if not host:
        raise AddressNotAllowedError(
            f"the {protocol} address names no host for {SETTING} to allow",
            setting=SETTING,
            allowed=allowed,
        )
    try:
        await policy.resolve(host)
    except DialRefusedError as exc:
        raise AddressNotAllowedError(
            f"the meter's host: {exc}; collectors connect only to {SETTING}",
            setting=SETTING,
            allowed=allowed,
        ) from exc


def check_model(protocol: str, model: str | None) -> None:
    """`InvalidError` (``extra["known_models"]``) if a Modbus meter names a model no
    register map is shipped for; no model means the pollers' default map."""
    if protocol != "modbus" or model is None:
        return
    known = list(list_models())
    if model not in known:
        raise InvalidError(
            f"no register map for Modbus model {model!r}; known models: {', '.join(known)}",
            known_models=known,
        )


async def create_meter(
    conn: Conn, *, principal: Principal, meter: MeterIn, policy: DialPolicy = DialPolicy()
) -> Meter:
    """Register ``meter``; its model must be a known one and its address one collectors may
    dial (``policy``)."""
    check_model(meter.protocol, meter.model)
    await check_address(meter.protocol, meter.address, policy=policy)
    async with conn.transaction():
        meter_id = await _insert(conn, meter, None)
        await audit.record(
            conn,
            principal,
            action="meter.create",
            target=f"meter:{meter_id}",
            detail=meter.model_dump(),
        )
        return await get_meter(conn, meter_id)


async def check_swap(protocol: Protocol, swap: Replacement, *, policy: DialPolicy) -> None:
    """What ``swap`` brings is input, checked as at registration: a new address must fit
    ``protocol`` (`InvalidError`) and be one collectors may dial (`AddressNotAllowedError`),
    a new model must be a known one."""
    if swap.address is not None:
        if (problem := address_problem(protocol, swap.address)) is not None:
            raise InvalidError(problem)
        await check_address(protocol, swap.address, policy=policy)
    check_model(protocol, swap.model)


def successor(old: Meter, swap: Replacement) -> MeterFields:
    """The meter that replaces ``old``: the values ``swap`` gives over ``old``'s. The stored
    values are taken as they are, never validated again: they may predate today's rules
    (an older address format, a narrower ``MHUB_COLLECT_NETWORKS``)."""
    given = {
        "code": swap.code,
        "installed_at": swap.at,
        "address": swap.address,
        "model": swap.model,
        "ct_ratio": swap.ct_ratio,
        "pt_ratio": swap.pt_ratio,
    }
    kept = old.model_dump(include=set(MeterFields.model_fields))
    return MeterFields.model_construct(**(kept | {k: v for k, v in given.items() if v is not None}))


async def replace_meter(
    conn: Conn,
    *,
    principal: Principal,
    meter_id: int,
    swap: Replacement,
    policy: DialPolicy = DialPolicy(),
) -> Meter:
    """Close ``meter_id`` at ``swap.at`` and open its successor; the firm's series stays
    continuous because rollups sum both meters and the swap's register readings close and
    open their series (`Replacement`). Only what ``swap`` gives is checked (`check_swap`:
    a new address must be one collectors may dial under ``policy``); what the successor
    keeps of the old meter is not (`successor`)."""
    async with conn.transaction():
        old = await get_meter(conn, meter_id)
        await check_swap(old.protocol, swap, policy=policy)
        if old.removed_at is not None:
            raise ConflictError(f"meter {meter_id} was already removed at {old.removed_at}")
        if swap.at <= old.installed_at:
            raise InvalidError("the replacement time is before the old meter's installation")
        await conn.execute("UPDATE meters SET removed_at = $2 WHERE id = $1", meter_id, swap.at)
        new_id = await _insert(conn, successor(old, swap), meter_id)
        await meter_history.record_swap(
            conn,
            old_id=meter_id,
            new_id=new_id,
            at=swap.at,
            final=swap.old_final_energy,
            initial=swap.new_initial_energy,
        )
        await audit.record(
            conn,
            principal,
            action="meter.replace",
            target=f"meter:{meter_id}",
            detail={"new_meter": new_id, **swap.model_dump()},
        )
        return await get_meter(conn, new_id)


_UPSERT_COLUMNS = (
    "firm_id", "code", "utility", "protocol", "address", "model", "ct_ratio", "pt_ratio",
    "rollover", "max_power", "poll_interval", "installed_at", "removed_at", "replaces_meter_id",
)  # fmt: skip


def _columns(prefix: str = "") -> str:
    return ", ".join(prefix + c for c in _UPSERT_COLUMNS)


_UPSERT = f"""
INSERT INTO meters AS m ({_columns()})
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (code) DO UPDATE
SET ({_columns()}) = ({_columns("EXCLUDED.")})
WHERE ({_columns("m.")}) IS DISTINCT FROM ({_columns("EXCLUDED.")})
RETURNING id, xmax = 0 AS added
"""


async def upsert_meter(
    conn: Conn,
    meter: MeterFields,
    *,
    removed_at: datetime | None,
    replaces_meter_id: int | None,
) -> tuple[int, Literal["added", "changed", "unchanged"]]:
    """Register ``meter`` or bring it up to date (by code), as it stands: removed at
    ``removed_at`` (None: active), the successor of ``replaces_meter_id``. No audit row (the
    caller records the batch); the address is taken as it is."""
    row = await conn.fetchrow(
        _UPSERT,
        meter.firm_id,
        meter.code,
        meter.utility,
        meter.protocol,
        orjson.dumps(meter.address).decode(),
        meter.model,
        meter.ct_ratio,
        meter.pt_ratio,
        meter.rollover,
        meter.max_power,
        timedelta(seconds=meter.poll_interval_s),
        meter.installed_at,
        removed_at,
        replaces_meter_id,
    )
    if row is None:
        meter_id: int = await conn.fetchval("SELECT id FROM meters WHERE code = $1", meter.code)
        return meter_id, "unchanged"
    return int(row["id"]), "added" if row["added"] else "changed"

"""The commissioning check: poll one terminal once, through the scheduler's own pollers, and
say what was read, what was refused and why; for DL/T 645 also the address the meter gives
for the read-address command (0x13) and how its 12 digits travel on the wire.

Nothing read is stored: the check is for the person at the cabinet, not for the series.

Example::

    report = await check_terminal(target, policy=DialPolicy(settings.collect_network_list))
    report.ok, report.values, report.refused, report.address
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

from collectors.dlt645.codec import encode_address
from collectors.dlt645.errors import Dlt645Error, FrameError, ReplyMismatchError
from collectors.dlt645.poller import Dlt645Poller
from collectors.dlt645.pool import BusPool
from collectors.dlt645.reader import read_address
from collectors.errors import CollectorError
from collectors.modbus.client import LinkOptions
from collectors.modbus.poller import DEFAULT_MODEL, ModbusPoller
from collectors.networks import DialPolicy, DialRefusedError
from collectors.targets import Poller, PollTarget, nothing_read
from meterhub.reading import LOCAL_TZ

#: The commissioning check reads these protocols (the others push their readings).
CHECKED_PROTOCOLS = ("modbus", "dlt645")
#: A 4G DTU dials in to the running collector's listener: only that process reaches it.
DTU_NOT_CHECKED = "a DTU dials in to the collector (MHUB_DTU_PORT), not checked from here"
#: Seconds the whole check may take beyond the per-request timeouts.
_OVERALL = 30.0

BYTE_ORDER = (
    "the 12 digits are the address as printed on the nameplate, most significant pair first; "
    "on the wire they travel as 6 BCD bytes, least significant pair first"
)


@dataclass(frozen=True, slots=True)
class AddressCheck:
    """What a DL/T 645 meter answered to the read-address command (0x13 to AAAAAAAAAAAA).

    ``wire`` is the registered address as sent in every request (hex bytes in wire order);
    ``answered`` the meter's own address, or None with ``error`` (no answer; several meters
    on one bus answer at once and collide)."""

    registered: str
    wire: str
    byte_order: str
    answered: str | None
    matches: bool
    error: str | None = None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class CheckReport:
    """One poll of a terminal. ``values`` are meter side (before CT x PT); ``refused`` maps a
    field or identifier to the meter's refusal, ``garbage`` to why its value is unusable;
    ``error`` is why nothing could be read at all (the dial refused, no answer...)."""

    meter_id: int
    protocol: str
    link: str
    ok: bool
    values: dict[str, float]
    refused: dict[str, str] = field(default_factory=dict)
    garbage: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    model: str | None = None
    meter_time: datetime | None = None
    clock_drift_s: float | None = None
    address: AddressCheck | None = None
    elapsed_s: float = 0.0


def _poller(protocol: str, timeout: float) -> Poller:
    if protocol == "modbus":
        return ModbusPoller(LinkOptions(timeout=timeout, retries=0))
    return Dlt645Poller(timeout=timeout, retries=1)


def _wire(address: str) -> str:
    try:
        return encode_address(address).hex(" ").upper()
    except Dlt645Error as exc:
        return f"not an address: {exc}"


def _hint(registered: str, answered: str) -> str | None:
    if registered == answered:
        return None
    swapped = "".join(answered[i : i + 2] for i in range(10, -2, -2))
    if registered == swapped:
        return f"the registered address is the meter's in wire byte order: register {answered}"
    return f"the meter answers as {answered}: register that address"


async def _address(target: PollTarget, timeout: float) -> AddressCheck:
    registered = str(target.address.get("address", ""))
    common = {"registered": registered, "wire": _wire(registered), "byte_order": BYTE_ORDER}
    pool = BusPool()
    try:
        answered = await read_address(pool.get(target.link), timeout=timeout, retries=1)
    except (CollectorError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, FrameError | ReplyMismatchError):  # replies that collided
            error += " (several meters on one bus answer the wildcard at once)"
        return AddressCheck(**common, answered=None, matches=False, error=error)
    finally:
        await pool.aclose()
    hint = _hint(registered, answered)
    return AddressCheck(**common, answered=answered, matches=hint is None, hint=hint)


async def _poll(target: PollTarget, timeout: float) -> CheckReport:
    poller = _poller(target.protocol, timeout)
    report = CheckReport(target.meter_id, target.protocol, target.link, ok=False, values={})
    try:
        async with asyncio.timeout(_OVERALL):
            result = await poller.poll(target, read_clock=True)
    except (CollectorError, TimeoutError, OSError) as exc:
        return replace(report, error=f"{type(exc).__name__}: {exc}")
    finally:
        await poller.close()
    at = result.measured_at or datetime.now(LOCAL_TZ)
    drift = None if result.meter_time is None else (result.meter_time - at).total_seconds()
    return replace(
        report,
        ok=bool(result.values),
        values=dict(result.values),
        refused=dict(result.refused),
        garbage=dict(result.bad_fields),
        error=None if result.values else nothing_read(result),
        meter_time=result.meter_time,
        clock_drift_s=None if drift is None else round(drift, 1),
    )


async def check_terminal(
    target: PollTarget, *, policy: DialPolicy, timeout: float = 2.0
) -> CheckReport:
    """Poll ``target`` (a Modbus or DL/T 645 terminal) once, its clock too, dialling only
    inside ``policy``; for DL/T 645 then ask the bus for the meter's address."""
    if target.protocol not in CHECKED_PROTOCOLS:
        raise ValueError(f"a {target.protocol} terminal is not polled")
    started = time.perf_counter()
    model = (target.model or DEFAULT_MODEL) if target.protocol == "modbus" else target.model
    refused = CheckReport(target.meter_id, target.protocol, target.link, ok=False, values={})
    if target.link.startswith("dtu://"):
        error = f"{DTU_NOT_CHECKED}: {target.link}"
        return replace(refused, model=model, error=error)
    try:
        dialled = await policy.checked(target)
    except DialRefusedError as exc:
        return replace(refused, model=model, error=f"DialRefusedError: {exc}")
    report = await _poll(dialled, timeout)
    address = await _address(dialled, timeout) if target.protocol == "dlt645" else None
    elapsed = round(time.perf_counter() - started, 3)
    return replace(report, model=model, address=address, elapsed_s=elapsed)

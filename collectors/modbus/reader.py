"""Reading one Modbus meter: every block of its register map, decoded into reading fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from collectors.errors import CollectorError, RequestTimeoutError
from collectors.modbus.client import BadResponseError, ModbusExceptionError, ModbusLink
from collectors.modbus.errors import DecodeError, NonFiniteValueError
from collectors.modbus.pool import LinkPool
from collectors.modbus.register_map import Block, MeterModel, plan_blocks
from collectors.modbus.values import decode_block
from meterhub.reading import Reading


@dataclass(frozen=True, slots=True)
class MeterValues:
    """What one read of a meter gave, on the meter's secondary side.

    ``values`` holds the fields that decoded to finite numbers (units of `Reading`).
    ``garbage`` maps each field that decoded to NaN or infinity to a description: quarantine
    it, never store it. ``missing`` names fields of blocks the meter refused (an exception
    response or a malformed reply); ``errors`` holds those refusals. ``ct`` and ``pt`` are
    passed through for the ingest path, which applies the multiplier. ``ts`` is when the
    first request was sent: these meters have no clock of their own, so it is the
    measurement time.
    """

    url: str
    unit_id: int
    model: str
    ts: datetime
    values: dict[str, float]
    garbage: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    errors: tuple[CollectorError, ...] = ()
    ct: float = 1.0
    pt: float = 1.0

    @property
    def multiplier(self) -> float:
        return self.ct * self.pt

    def to_reading(self, meter_id: int, *, source: str = "modbus") -> Reading:
        """The good values as a `Reading` (garbage and missing fields left out)."""
        fields: dict[str, Any] = self.values  # every key is a VALUE_FIELDS name
        return Reading(meter_id=meter_id, ts=self.ts, source=source, **fields)


async def read_meter(
    via: LinkPool | ModbusLink,
    *,
    model: MeterModel,
    unit_id: int,
    url: str | None = None,
    ct: float = 1.0,
    pt: float = 1.0,
    blocks: Sequence[Block] | None = None,
) -> MeterValues:
    """Read every block of `model` from meter `unit_id`, in the fewest requests.

    `via` is a `LinkPool` (then `url` names the endpoint) or one `ModbusLink`. `blocks`
    defaults to ``plan_blocks(model)`` (cached per model). A silent meter or a failing link
    stops the read at once with `RequestTimeoutError` or `TransportError`: later blocks
    would only wait as long. A block the meter refuses or answers malformed leaves its
    fields in ``missing``; when every block is refused the first refusal is raised.

    Example::

        async with LinkPool() as pool:
            got = await read_meter(pool, model=load_model("eastron_sdm630"),
                                   unit_id=3, url="tcp://127.0.0.1:502", ct=40)
            reading = got.to_reading(meter_id=17)
    """
    if isinstance(via, ModbusLink):
        link = via
    elif url is None:
        raise ValueError("read_meter through a LinkPool needs url=")
    else:
        link = via.link(url)
    plan = _plan(model) if blocks is None else blocks
    ts = datetime.now(UTC)
    values: dict[str, float] = {}
    garbage: dict[str, str] = {}
    missing: list[str] = []
    errors: list[CollectorError] = []
    for block in plan:
        try:
            values.update(decode_block(block, await link.read(block, unit_id=unit_id)))
        except RequestTimeoutError:
            raise  # a gateway's "no answer from the meter" is a ModbusExceptionError too
        except NonFiniteValueError as exc:
            values.update(exc.values)
            garbage.update(exc.problems)
        except (ModbusExceptionError, BadResponseError, DecodeError) as exc:
            missing.extend(p.field for p in block.points)
            errors.append(exc)
    if errors and len(errors) == len(plan):
        raise errors[0]
    return MeterValues(
        url=link.url,
        unit_id=unit_id,
        model=model.name,
        ts=ts,
        values=values,
        garbage=garbage,
        missing=tuple(missing),
        errors=tuple(errors),
        ct=ct,
        pt=pt,
    )


@lru_cache(maxsize=256)
def _plan(model: MeterModel) -> tuple[Block, ...]:
    return tuple(plan_blocks(model))

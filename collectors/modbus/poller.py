"""The scheduler's Modbus poller: a meter's registry entry -> one read through a link pool."""

from __future__ import annotations

from functools import lru_cache

from collectors.modbus.client import LinkOptions
from collectors.modbus.pool import LinkPool
from collectors.modbus.reader import read_meter
from collectors.modbus.register_map import MeterModel, load_model
from collectors.targets import PollResult, PollTarget

DEFAULT_MODEL = "eastron_sdm630"


@lru_cache(maxsize=64)
def _model(name: str) -> MeterModel:
    return load_model(name)


class ModbusPoller:
    """Reads a registered Modbus meter: ``address`` holds host, port, unit_id (and optionally
    ``framer`` "rtu+tcp"); ``model`` names a register map file."""

    def __init__(self, options: LinkOptions | None = None) -> None:
        self._pool = LinkPool(options)

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        values = await read_meter(
            self._pool,
            model=_model(target.model or DEFAULT_MODEL),
            unit_id=int(target.address["unit_id"]),
            url=target.link,
        )
        refused = dict.fromkeys(values.missing, "; ".join(map(str, values.errors)))
        return PollResult(
            values=dict(values.values),
            bad_fields=dict(values.garbage),
            refused=refused,
            measured_at=values.ts,
        )

    async def close(self) -> None:
        await self._pool.close()

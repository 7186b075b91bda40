"""The scheduler's DL/T 645 poller: a meter's registry entry -> one read on its bus.

``address`` holds the 12-digit meter address and the bus URL (``tcp://host:port`` for a
transparent serial server, ``dtu://<id>`` for a 4G DTU that dials in, ``serial:///dev/...``).
The meter clock (two more requests) is read only when the scheduler asks for it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.dlt645.dtu import DtuListener
from collectors.dlt645.errors import MeterErrorReply
from collectors.dlt645.pool import BusPool
from collectors.dlt645.reader import DATE_DI, DEFAULT_SET, TIME_DI, read_meter
from collectors.targets import PollResult, PollTarget
from ingest.quarantine import Reason

#: What a poll reads when the clock is not due.
WITHOUT_CLOCK = tuple(q for q in DEFAULT_SET if q.di not in (DATE_DI, TIME_DI))


class Dlt645Poller:
    """Reads registered DL/T 645 meters; one bus object (and lock) per physical bus."""

    def __init__(
        self, *, dtu_listener: DtuListener | None = None, timeout: float = 2.0, retries: int = 1
    ) -> None:
        self._pool = BusPool(dtu_listener=dtu_listener)
        self._timeout, self._retries = timeout, retries

    async def poll(self, target: PollTarget, *, read_clock: bool) -> PollResult:
        bus = self._pool.get(target.link)
        started = datetime.now(UTC)
        values = await read_meter(
            bus,
            str(target.address["address"]),
            identifiers=DEFAULT_SET if read_clock else WITHOUT_CLOCK,
            timeout=self._timeout,
            retries=self._retries,
        )
        # A refused identifier (error reply) is absent (its words kept, in case nothing was
        # read at all: then the poll failed); a garbled value is garbage.
        garbage: dict[str, str] = {}
        refused: dict[str, str] = {}
        for di, error in values.missing.items():
            (refused if isinstance(error, MeterErrorReply) else garbage)[f"di {di:08X}"] = str(
                error
            )
        return PollResult(
            values=dict(values.fields),
            bad_fields=garbage,
            refused=refused,
            bad_reason=Reason.MALFORMED_PAYLOAD,
            measured_at=started,
            meter_time=values.clock if read_clock else None,
        )

    async def close(self) -> None:
        await self._pool.aclose()

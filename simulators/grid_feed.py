"""The grid company's feed, simulated: readings of grid-feed meters pushed to the HTTP API.

`GridFeedClient` POSTs one batch to ``/v1/readings`` (gzip JSON, ``X-API-Key`` of a
``grid`` key whose scope is the feed) and retries on 503/429/502/504, honouring
``Retry-After``, and on connection errors. `GridFeedPusher` is the live feed: every tick,
each meter's reading under the asset number of the meter installed then (a replacement
changes it); ``no_answer`` leaves the reading out, ``late_answer`` sends it with the next
tick's batch, ``garbage_values`` sends an absurd value (NaN as the string ``"NaN"``).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from meterhub.logs import get_logger
from meterhub.reading import VALUE_FIELDS
from simulators.errors import SimulatorError
from simulators.fleet import installed, misbehaviour
from simulators.meter import SimulatedMeter

Row = dict[str, object]
PATH = "/v1/readings"
#: Statuses that mean "try again later" rather than "this batch is wrong".
RETRYABLE = frozenset({429, 502, 503, 504})
log = get_logger(__name__)


class GridFeedError(SimulatorError):
    """The API refused a batch for good (bad key, bad body), or stayed busy too long."""

    code = "grid_feed"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class PushTotals:
    """What the API answered, summed over batches (see ``POST /v1/readings``)."""

    batches: int = 0
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    spooled: int = 0
    retries: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: PushTotals) -> None:
        for name in ("batches", "received", "accepted", "duplicates", "conflicts", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.spooled += other.spooled
        self.retries += other.retries
        self.reasons.update(other.reasons)

    @classmethod
    def of(cls, answer: dict[str, Any], *, retries: int) -> PushTotals:
        reasons = Counter(str(r.get("reason")) for r in answer.get("rejections", ()))
        counts = {k: int(answer.get(k, 0)) for k in ("received", "accepted", "duplicates")}
        return cls(
            batches=1,
            conflicts=int(answer.get("conflicts", 0)),
            rejected=int(answer.get("rejected", 0)),
            spooled=int(answer.get("spooled", 0)),
            retries=retries,
            reasons=reasons,
            **counts,
        )


def _number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def feed_row(meter: SimulatedMeter, ts: datetime, *, faults: bool = True) -> Row:
    """The feed's row for ``meter`` at true time ``ts`` (the meter must be installed)."""
    reading = meter.snapshot(ts, faults=faults)
    row: Row = {"meter": meter.installation_at(ts).code, "ts": reading.ts.isoformat()}
    for name in VALUE_FIELDS:
        if (value := getattr(reading, name)) is not None:
            row[name] = _number(value)
    return row


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class GridFeedClient:
    """Pushes batches with ``http`` (its ``base_url`` is the API) under grid key ``key``;
    gives up on a batch after ``max_wait`` seconds of retrying.

    Example::

        async with httpx.AsyncClient(base_url="http://127.0.0.1:8000", timeout=60) as http:
            totals = await GridFeedClient(http, key=key).push(rows)
    """

    def __init__(self, http: httpx.AsyncClient, *, key: str, max_wait: float = 300.0) -> None:
        self.http = http
        self._headers = {
            "X-API-Key": key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self.max_wait = max_wait

    async def push(self, rows: Sequence[Row]) -> PushTotals:
        """POST ``rows`` as one batch; `GridFeedError` if refused or busy beyond ``max_wait``."""
        body = gzip.compress(orjson.dumps(list(rows)), compresslevel=1)
        deadline = time.monotonic() + self.max_wait
        attempt = 0
        while True:
            try:
                response = await self.http.post(PATH, content=body, headers=self._headers)
            except httpx.TransportError as exc:
                wait, why = min(30.0, 0.5 * 2**attempt), f"cannot reach the API: {exc!r}"
            else:
                if response.status_code == 202:
                    return PushTotals.of(response.json(), retries=attempt)
                why = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRYABLE:
                    status = response.status_code
                    raise GridFeedError(f"the API refused the batch: {why}", status=status)
                wait = _retry_after(response) or min(30.0, 0.5 * 2**attempt)
            attempt += 1
            if time.monotonic() + wait > deadline:
                raise GridFeedError(f"gave up after {attempt} attempts; last: {why}")
            log.debug("grid feed batch retried", attempt=attempt, wait=wait, why=why)
            await asyncio.sleep(wait)


class GridFeedPusher:
    """The live feed of ``meters``: `push_at` sends every meter's reading at one tick.

    Rows the API could not take (it stayed away) are kept, up to ``max_pending``, and sent
    with the next tick. Example::

        pusher = GridFeedPusher(GridFeedClient(http, key=key), fleet.feed("sgcc-yiwu"))
        totals = await pusher.push_at(tick)
    """

    def __init__(
        self,
        client: GridFeedClient,
        meters: Sequence[SimulatedMeter],
        *,
        batch_size: int = 5000,
        max_pending: int = 200_000,
    ) -> None:
        self.client, self.meters = client, list(meters)
        self.batch_size, self.max_pending = batch_size, max_pending
        self.totals = PushTotals()
        self._pending: list[Row] = []
        self._late: list[Row] = []

    def rows_at(self, ts: datetime) -> list[Row]:
        """This tick's rows plus last tick's late ones; late ones of this tick wait."""
        rows, self._late = self._late, []
        for meter in self.meters:
            if not installed(meter, ts):
                continue
            odd = misbehaviour(meter, ts)
            if not odd.silent:
                (self._late if odd.delay else rows).append(feed_row(meter, ts))
        return rows

    async def push_at(self, ts: datetime) -> PushTotals:
        """Push the readings at tick ``ts`` (and any left over); `GridFeedError` if a batch
        could not be delivered (its rows wait for the next tick, unless refused for good)."""
        rows = self._pending + self.rows_at(ts)
        self._pending = []
        totals = PushTotals()
        try:
            for start in range(0, len(rows), self.batch_size):
                try:
                    totals.add(await self.client.push(rows[start : start + self.batch_size]))
                except GridFeedError as exc:
                    if exc.status is None:  # unreachable or busy: keep for the next tick
                        self._pending = rows[start:][-self.max_pending :]
                    raise
        finally:
            self.totals.add(totals)
        log.info(
            "grid feed pushed",
            tick=ts.isoformat(),
            accepted=totals.accepted,
            duplicates=totals.duplicates,
            rejected=totals.rejected,
            late=len(self._late),
        )
        return totals

"""The fault suite's one way of counting: readings sent, acknowledged, stored, lost
(acknowledged and not stored) and duplicated (stored twice, or a conflicting second version).

Every scenario keeps a `Ledger` of the (meter, ts) keys its stream sent and had
acknowledged (HTTP 202, PUBACK 0 at the gateway, `IngestSink.submit` returning for the
poller), then `settle`s it against the database: it waits until everything acknowledged is
stored (or the time is up), counts, checks each stored value against the one sent, and adds
the `Tally` to `RESULTS`, which the suite's conftest prints as a table and one JSON line at
the end of the session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

import asyncpg
import orjson

Key = tuple[int, datetime]

COLUMNS = ("sent", "acked", "stored", "lost", "duplicated", "set_aside", "invented", "altered")


@dataclass(slots=True)
class Tally:
    """One scenario's counts. ``set_aside``: acknowledged readings in a damaged spool record
    that recovery moved to ``spool/corrupt/`` (kept byte for byte, not stored, not lost);
    ``invented``: stored and never sent; ``altered``: stored with another value than sent."""

    scenario: str
    sent: int = 0
    acked: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    set_aside: int = 0
    invented: int = 0
    altered: int = 0

    def report(self) -> str:
        return orjson.dumps(asdict(self)).decode()


RESULTS: list[Tally] = []  # every tally settled in this session, in order


@dataclass
class Ledger:
    """What one stream sent and what was acknowledged, with the energy each key carried."""

    scenario: str
    sent: dict[Key, float | None] = field(default_factory=dict)
    acked: set[Key] = field(default_factory=set)
    set_aside: set[Key] = field(default_factory=set)

    def send(self, keys: Iterable[tuple[Key, float | None]]) -> None:
        for key, energy in keys:
            self.sent[key] = energy

    def ack(self, keys: Iterable[Key]) -> None:
        self.acked.update(keys)

    @property
    def meters(self) -> list[int]:
        return sorted({meter for meter, _ in self.sent})

    async def settle(self, conn: asyncpg.Connection, *, wait: float = 30.0) -> Tally:
        """Wait up to ``wait`` s for every acknowledged key (not set aside) to be stored,
        then count; the tally is printed and kept in `RESULTS`."""
        meters = self.meters
        expected = self.acked - self.set_aside
        deadline = time.monotonic() + wait
        while True:
            rows = await conn.fetch(
                "SELECT meter_id, ts, energy FROM readings WHERE meter_id = ANY($1::bigint[])",
                meters,
            )
            keys = {(r["meter_id"], r["ts"]) for r in rows}
            if expected <= keys or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        conflicts = await conn.fetchval(
            "SELECT count(*) FROM reading_conflicts WHERE meter_id = ANY($1::bigint[])", meters
        )
        altered = sum(
            1
            for r in rows
            if (sent := self.sent.get((r["meter_id"], r["ts"]))) is not None
            and abs(r["energy"] - sent) > 1e-6
        )
        tally = Tally(
            self.scenario,
            sent=len(self.sent),
            acked=len(self.acked),
            stored=len(rows),
            lost=len(expected - keys),
            duplicated=len(rows) - len(keys) + int(conflicts),
            set_aside=len(self.set_aside),
            invented=len(keys - self.sent.keys()),
            altered=altered,
        )
        print(tally.report())
        RESULTS.append(tally)
        return tally


def assert_exact(tally: Tally, *, all_acked: bool = True) -> None:
    """Nothing lost, doubled, invented or altered; with ``all_acked`` (a client that retries
    until acknowledged) also everything sent acknowledged and stored."""
    assert (tally.lost, tally.duplicated, tally.invented, tally.altered) == (0, 0, 0, 0), tally
    if all_acked:
        assert tally.acked == tally.sent == tally.stored + tally.set_aside, tally


def table(results: list[Tally]) -> list[str]:
    """The rows of the summary table, then one JSON line of the totals."""
    width = max([len("scenario"), *(len(t.scenario) for t in results)])
    lines = [f"{'scenario':<{width}}  " + "  ".join(f"{c:>10}" for c in COLUMNS)]
    for t in results:
        values = asdict(t)
        lines.append(f"{t.scenario:<{width}}  " + "  ".join(f"{values[c]:>10}" for c in COLUMNS))
    totals = {c: sum(getattr(t, c) for t in results) for c in COLUMNS}
    summary = {"scenarios": len(results), **totals}
    lines.append(orjson.dumps(summary).decode())
    return lines


assert {f.name for f in fields(Tally)} == {"scenario", *COLUMNS}

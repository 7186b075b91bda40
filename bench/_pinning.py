"""Which CPUs the ingest process and its load generator may use (Linux CPU affinity).

Both sides of the push comparison run their ingest process (this process calling `submit`,
or `meterhub serve`) on the same CPU set; the HTTP clients, which stand for the grid
company's machines, run on the CPUs left over. Child processes inherit the affinity of the
process that starts them. PostgreSQL is a shared service and is never pinned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuPlan:
    ingest: frozenset[int]
    clients: frozenset[int]

    def describe(self) -> str:
        return (
            f"ingest process on CPU {_text(self.ingest)} on both sides, HTTP clients on CPU "
            f"{_text(self.clients)}, PostgreSQL unpinned ({len(available())} CPUs here)"
        )


def _text(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def available() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def plan(spec: str | None) -> CpuPlan:
    """``spec``: the ingest CPUs as ``"1"`` or ``"2,3"``; default the last CPU this process
    may use. The clients get the others (the same ones on a single-CPU machine)."""
    cpus = available()
    ingest = frozenset(int(c) for c in spec.split(",")) if spec else frozenset({max(cpus)})
    if not ingest <= cpus:
        raise SystemExit(f"--cpus {spec}: this process may use CPU {_text(cpus)} only")
    return CpuPlan(ingest, (cpus - ingest) or ingest)


@contextmanager
def pinned(cpus: frozenset[int]) -> Iterator[None]:
    """This process (and what it starts meanwhile) on ``cpus``; the former set afterwards."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)

"""Which CPUs the measured process and its load generator may use (Linux CPU affinity).

The load stands for other machines: in `bench/api.py` the HTTP clients are the grid
company's machines (both sides of the push comparison run their ingest process, this
process calling `submit` or `meterhub serve`, on the same CPU set); in `bench/collect.py`
the simulated meter fleets are the meters in the field. They run on the CPUs left over.
Child processes inherit the affinity of the process that starts them. PostgreSQL is a
shared service and is never pinned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuPlan:
    measured: frozenset[int]
    load: frozenset[int]

    def describe(self, measured: str, load: str) -> str:
        return (
            f"{measured} on CPU {_text(self.measured)}, {load} on CPU {_text(self.load)}, "
            f"PostgreSQL unpinned ({len(available())} CPUs here)"
        )


def _text(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def available() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def plan(spec: str | None) -> CpuPlan:
    """``spec``: the measured process's CPUs as ``"1"`` or ``"2,3"``; default the last CPU
    this process may use. The load gets the others (the same ones on a single-CPU
    machine)."""
    cpus = available()
    measured = frozenset(int(c) for c in spec.split(",")) if spec else frozenset({max(cpus)})
    if not measured <= cpus:
        raise SystemExit(f"--cpus {spec}: this process may use CPU {_text(cpus)} only")
    return CpuPlan(measured, (cpus - measured) or measured)


@contextmanager
def pinned(cpus: frozenset[int]) -> Iterator[None]:
    """This process (and what it starts meanwhile) on ``cpus``; the former set afterwards."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)

"""The collector benchmark's headroom: the largest fleet one collector process still polls
on its 1-minute cycle, found by adding buses and gateways (the same meters on each, both
protocols in the registered proportion) in steps until a cycle is lost, then bisecting.

Each trial is a run of its own: a fresh throwaway database, fresh simulator fleets, one
measured cycle (the first: connections opened, every clock due, the hardest one)."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from bench._polling import PollFigures
from bench._registry import PROTOCOLS, console


@dataclass(frozen=True, slots=True)
class Trial:
    scale: float
    meters: dict[str, int]
    per_min: float
    held: bool
    cycle_max_s: float
    missed: int
    failed: int


def trial_of(scale: float, figures: PollFigures) -> Trial:
    took = figures.every()
    return Trial(
        scale=scale,
        meters=dict(figures.meters),
        per_min=sum(figures.per_min(p) for p in PROTOCOLS),
        held=figures.held,
        cycle_max_s=max(took) if took else 0.0,
        missed=figures.missed,
        failed=sum(figures.failed.values()),
    )


def scaled(args: argparse.Namespace, scale: float) -> argparse.Namespace:
    """``args`` with both fleets ``scale`` times the registered size and one cycle."""
    out = copy.copy(args)
    out.modbus, out.dlt645 = round(args.modbus * scale), round(args.dlt645 * scale)
    out.cycles = 1
    return out


def next_scale(trials: list[Trial], *, step: float, most: float, bisect: int) -> float | None:
    """The next scale to try: upward in ``step`` while every trial held (up to ``most``),
    then ``bisect`` halvings between the largest that held and the smallest that did not."""
    bad = min((t.scale for t in trials if not t.held), default=None)
    good = max((t.scale for t in trials if t.held and (bad is None or t.scale < bad)), default=0.0)
    if bad is None:
        upward = round(good + step, 6)
        return upward if upward <= most + 1e-9 else None
    first_lost = next(n for n, t in enumerate(trials, start=1) if not t.held)
    if len(trials) - first_lost >= bisect:
        return None
    return round((good + bad) / 2, 6)


async def search(
    first: Trial,
    run: Callable[[float], Awaitable[Trial]],
    *,
    step: float,
    most: float,
    bisect: int,
) -> list[Trial]:
    """Every trial, ``first`` (the registered fleet) included."""
    trials = [first]
    while (scale := next_scale(trials, step=step, most=most, bisect=bisect)) is not None:
        trial = await run(scale)
        trials.append(trial)
        report_trial(trial)
    return trials


def best(trials: list[Trial]) -> Trial | None:
    held = [t for t in trials if t.held]
    return max(held, key=lambda t: t.per_min) if held else None


def report_trial(t: Trial) -> None:
    fleet = ", ".join(f"{t.meters[p]:,} {p}" for p in PROTOCOLS)
    verdict = "[green]held[/]" if t.held else "[red]lost[/]"
    console.print(
        f"[bold]headroom[/] x{t.scale:g} ({fleet}): {verdict} the cycle, {t.per_min:,.0f} "
        f"meters/min, slowest link {t.cycle_max_s:.1f} s tick to commit, {t.missed} missed, "
        f"{t.failed} failed polls",
        highlight=False,
    )


def report_search(trials: list[Trial], *, most: float) -> None:
    say = partial(console.print, highlight=False)
    top = best(trials)
    if top is None:
        say("[bold]headroom[/]: no fleet tried held the cycle")
        return
    lost = [t for t in trials if not t.held]
    above = f"x{min(t.scale for t in lost):g} lost it" if lost else f"none lost it up to x{most:g}"
    say(
        f"[bold]headroom[/]: the largest fleet that held the cycle is x{top.scale:g} the "
        f"registered one, {top.per_min:,.0f} meters/min ({above})"
    )

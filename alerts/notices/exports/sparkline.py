"""A small trend line of weekly kWh for an inline SVG: the geometry only (the template
draws it). Missing weeks are gaps: the line breaks there, and a week with no neighbour is
a dot. Coordinates have one decimal, so the same trend gives the same text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 120.0, 28.0, 3.0


@dataclass(frozen=True, slots=True)
class Sparkline:
    width: float
    height: float
    lines: tuple[str, ...]  # `points` of each polyline (runs of two or more weeks)
    dots: tuple[tuple[str, str], ...]  # (cx, cy) of lone weeks and of the latest week
    missing: int  # weeks without data

    @property
    def empty(self) -> bool:
        return not self.lines and not self.dots


def _f(value: float) -> str:
    return f"{value:.1f}"


def sparkline(values: Sequence[float | None]) -> Sparkline:
    """The geometry of ``values`` (oldest first) in a WIDTH x HEIGHT box."""
    known = [v for v in values if v is not None]
    missing = len(values) - len(known)
    if not known:
        return Sparkline(WIDTH, HEIGHT, (), (), missing)
    low, high = min(known), max(known)
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)

    def point(i: int, v: float) -> tuple[str, str]:
        share = 0.5 if high == low else (high - v) / (high - low)
        return _f(PAD + i * step), _f(PAD + share * (HEIGHT - 2 * PAD))

    runs: list[list[tuple[str, str]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(point(i, v))
    lines = tuple(" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1)
    dots = [run[0] for run in runs if len(run) == 1]
    last, latest = len(values) - 1, values[-1]
    if latest is not None and last > 0 and values[last - 1] is not None:
        dots.append(point(last, latest))  # the latest week, marked on its line
    return Sparkline(WIDTH, HEIGHT, lines, tuple(dots), missing)

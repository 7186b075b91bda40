"""The soak's figures: samples and latencies summarised, and its verdict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return math.nan


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def percentile(values: list[float], q: float, *, digits: int | None = 2) -> float:
    """The ``q`` quantile of ``values`` (nearest rank), rounded to ``digits`` (None: not)."""
    if not values:
        return math.nan
    value = sorted(values)[min(len(values) - 1, int(q * len(values)))]
    return value if digits is None else round(value, digits)


def latency_figures(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": percentile(values, 1.0),
    }


def series(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per sampled figure: first, last, max, and the max of each half of the run."""
    if not samples:
        return {}
    half = len(samples) // 2
    return {
        k: {
            "first": round(samples[0][k], 1),
            "last": round(samples[-1][k], 1),
            "max": round(max(s[k] for s in samples), 1),
            "first_half_max": round(max(s[k] for s in samples[: max(1, half)]), 1),
            "second_half_max": round(max(s[k] for s in samples[half:]), 1),
        }
        for k in samples[0]
        if k != "t"
    }


def verdict(result: dict[str, Any]) -> dict[str, bool]:
    """Flat memory (no process's RSS grows more than 15 % + 20 MB from the first half to
    the second), spool, queue and dirty backlog ending where they started (not growing),
    p99 reading-to-queryable under 5 s on each path, every pushed reading stored."""
    samples: dict[str, dict[str, float]] = result["samples"]
    flat = all(
        v["second_half_max"] <= v["first_half_max"] * 1.15 + 20
        for k, v in samples.items()
        if k.startswith("rss_mb.")
    )
    drained = all(
        v["last"] <= max(v["first"], 0.0) or v["last"] <= v["first_half_max"]
        for k, v in samples.items()
        if not k.startswith("rss_mb.")
    )
    fast = {k: v["p99"] < 5.0 for k, v in result["latency_s"].items()}
    stored = result["stored"]
    complete = (
        stored.get("grid-feed", 0) == result["sent"]["http"]
        and stored.get("mqtt", 0) == result["sent"]["mqtt"]
    )
    return {"flat_memory": flat, "no_growing_backlog": drained, "complete": complete} | {
        f"p99_under_5s_{k}": ok for k, ok in fast.items()
    }

"""A scheme's class cuts as a sheet cell writes them: ``A=0.2;B=0.6;C=0.95`` (``:`` for
``=``, ``,`` or ``；`` between), or a JSON object."""

from __future__ import annotations

import re

import orjson

_SEPARATORS = re.compile(r"[;,；，]")


def parse_cuts(text: str) -> dict[str, float]:
    """``{"A": 0.2, "B": 0.6, "C": 0.95}`` from the cell; ValueError if it is none."""
    text = text.strip()
    if text.startswith("{"):
        try:
            loaded = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"cuts are not a JSON object: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValueError("cuts are not a JSON object")
        return {str(k): float(v) for k, v in loaded.items()}
    cuts: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in _SEPARATORS.split(text))):
        name, sep, value = part.replace(":", "=").partition("=")
        try:
            cuts[name.strip().upper()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"cuts look like A=0.2;B=0.6;C=0.95, not {text!r}")
    return cuts

"""Field types and parsers the reference models share: sourced text, days as sheets write
them, and Chinese names of coded values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from registry import fields

#: Non-empty text PostgreSQL can store, blanks around removed (a row without a source is
#: refused).
Text = Annotated[fields.Text, StringConstraints(strip_whitespace=True, min_length=1)]
#: Optional text (a note).
Note = fields.Text | None
#: A number that is neither infinite nor NaN.
Finite = Annotated[float, Field(allow_inf_nan=False)]

_DAY = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]00:00(:00)?)?$"
)


def parse_day(value: Any) -> Any:
    """``2026-02-16``, ``2026/2/16``, ``2026.2.16`` or ``2026年2月16日`` (an XLSX date cell
    may add ``00:00:00``) as a date; other values are left to pydantic."""
    if isinstance(value, str):
        match = _DAY.match(value.strip())
        if match is None:
            raise ValueError("a day looks like 2026-02-16, 2026/2/16 or 2026年2月16日")
        return date(int(match[1]), int(match[2]), int(match[3]))
    return value


def coded(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with a Chinese name in ``names`` replaced by its code."""
    if isinstance(value, str):
        stripped = value.strip()
        return names.get(stripped, stripped)
    return value

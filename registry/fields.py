"""Field types the registry's models and the API's parameters share: what PostgreSQL can
hold, refused at validation (422) instead of failing in the database (500).

Example::

    class FirmPatch(BaseModel):
        name: Text | None = None
        tags: list[Text] | None = None
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: A PostgreSQL ``bigint``: ids, offsets, foreign keys.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
#: A count of rows to skip.
Offset = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: Text PostgreSQL can store: no NUL character.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]

#: The days the trend queries accept: wide enough for any data the city holds, narrow
#: enough that a period before or after (a year, a week) still exists.
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2099, 12, 31)


def _storable(value: Any, where: str = "") -> Any:
    """``value`` (JSON: dicts, lists, strings...) if no string in it holds a NUL and no
    integer in it is beyond 64 bits (neither jsonb's encoder here nor a reader takes one)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'the value'} contains a NUL character")
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{where or 'the value'} is an integer beyond 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, f"{where}.{key}".lstrip(".") if isinstance(key, str) else where)
            _storable(item, f"{where}.{key}".lstrip("."))
    elif isinstance(value, list):
        for item in value:
            _storable(item, where)
    return value


#: A JSON object PostgreSQL's jsonb can store (no NUL in any key or string, no integer
#: beyond 64 bits).
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


def _instant(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of time stamps") from None
    return value


#: An aware date-time that exists in UTC (``0001-01-01T00:00+14:00`` does not).
Instant = Annotated[datetime, AfterValidator(_instant)]

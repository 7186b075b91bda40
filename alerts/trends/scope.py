"""What a trend query is about, and whether the caller may see it.

A `Target` is a set of firms (one firm, an industry prefix, a town, the city, or their
combination) or a single meter. Town keys see only their own town: asking for another
town's firm, one of its meters or another town's aggregate is 403; aggregates wider than a
town (the city, an industry) are narrowed to the key's own town, and the answer says so in
its ``town`` field.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import asyncpg

from alerts.errors import InvalidQueryError
from meterhub.reading import Utility
from registry.errors import NotFoundError
from registry.fields import INT64_MAX, INT64_MIN
from registry.keys import Principal
from registry.scope import check_town, town_filter

#: A GB/T 4754 code or a prefix of one: section letter, then up to four digits.
INDUSTRY_PREFIX = re.compile(r"^[A-T][0-9]{0,4}$")


class Scope(enum.StrEnum):
    METER = "meter"
    FIRM = "firm"
    INDUSTRY = "industry"
    TOWN = "town"
    CITY = "city"


@dataclass(frozen=True, slots=True)
class Target:
    """Firms selected by every given field (None = any); or one meter."""

    meter_id: int | None = None
    firm_id: int | None = None
    town: str | None = None
    industry: str | None = None
    meter_utility: Utility | None = None


def check_industry(industry: str | None) -> str | None:
    if industry is not None and not INDUSTRY_PREFIX.match(industry):
        raise InvalidQueryError(
            f"industry must be a GB/T 4754 code prefix such as C17: {industry!r}"
        )
    return industry


def _number(scope: Scope, id: str) -> int:
    try:
        number = int(id)
    except ValueError:
        raise InvalidQueryError(f"a {scope} id is a number: {id!r}") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidQueryError(f"a {scope} id is a 64-bit number: {id!r}")
    return number


async def resolve(
    pool: asyncpg.Pool, principal: Principal, *, scope: Scope, id: str | None
) -> Target:
    """The `Target` of ``scope``/``id`` for ``principal``: 404 if unknown, 403 if not theirs."""
    if scope is not Scope.CITY and not id:
        raise InvalidQueryError(f"scope={scope} needs an id")
    if scope is Scope.METER:
        assert id is not None
        row = await pool.fetchrow(
            "SELECT m.utility, f.town FROM meters m JOIN firms f ON f.id = m.firm_id "
            "WHERE m.id = $1",
            _number(scope, id),
        )
        if row is None:
            raise NotFoundError(f"no meter {id}")
        check_town(principal, row["town"])
        return Target(meter_id=_number(scope, id), meter_utility=Utility(row["utility"]))
    if scope is Scope.FIRM:
        assert id is not None
        town = await pool.fetchval("SELECT town FROM firms WHERE id = $1", _number(scope, id))
        if town is None:
            raise NotFoundError(f"no firm {id}")
        check_town(principal, town)
        return Target(firm_id=_number(scope, id))
    if scope is Scope.TOWN:
        town = town_filter(principal, id)
        # A town all of whose firms moved away still has its past (`firm_towns`).
        if not await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM firm_towns WHERE town = $1)", town
        ):
            raise NotFoundError(f"no firm is or was registered in {town}")
        return Target(town=town)
    if scope is Scope.INDUSTRY:
        return Target(industry=check_industry(id), town=town_filter(principal, None))
    return Target(town=town_filter(principal, None))

"""What a key may see: town keys see only their own town."""

from __future__ import annotations

from registry.errors import ForbiddenScopeError
from registry.keys import Principal, Role


def town_filter(principal: Principal, requested: str | None) -> str | None:
    """The town a listing must be limited to: a town key's own town (asking for another
    is `ForbiddenScopeError`), else whatever was requested (None: all towns)."""
    if principal.role is not Role.TOWN:
        return requested
    if requested is not None and requested != principal.scope:
        raise ForbiddenScopeError(f"a key for {principal.scope} may not read {requested}")
    return principal.scope


def check_town(principal: Principal, town: str) -> None:
    """`ForbiddenScopeError` unless ``principal`` may read data of a firm in ``town``."""
    if principal.role is Role.TOWN and town != principal.scope:
        raise ForbiddenScopeError(f"a key for {principal.scope} may not read firms of {town}")

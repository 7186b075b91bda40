"""The registry's error tree: every error a registry service raises derives from
`RegistryError`, and each class carries a stable ``code``. ``extra`` holds machine-readable
details (e.g. the valid town names) that a caller may show."""

from __future__ import annotations

from typing import Any

from meterhub.errors import MeterhubError


class RegistryError(MeterhubError):
    code = "registry"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFoundError(RegistryError):
    """No such firm, meter or key."""

    code = "not_found"


class ConflictError(RegistryError):
    """The change conflicts with what is registered (a taken code, a removed meter)."""

    code = "conflict"


class InvalidError(RegistryError):
    """The values do not pass the registry's rules."""

    code = "invalid"


class UnknownTownError(InvalidError):
    """A town that is not one of the towns table's; ``extra["valid_towns"]`` lists them."""

    code = "unknown_town"


class SheetError(InvalidError):
    """An uploaded sheet that cannot be read (encoding, workbook, unknown column)."""

    code = "sheet"


class ForbiddenScopeError(RegistryError):
    """The key's scope (its town) does not cover what was asked for."""

    code = "forbidden_scope"


class AddressNotAllowedError(InvalidError):
    """A meter address the collectors would dial outside ``MHUB_COLLECT_NETWORKS``;
    ``extra`` names the setting and the allowed networks."""

    code = "address_not_allowed"


class KeyLookupUnavailableError(RegistryError):
    """A key cannot be verified: the database is away and the key has not been verified
    since the service started (HTTP: 503 with Retry-After, never 401)."""

    code = "key_lookup_unavailable"

"""Every domain error maps to its problem in api.problems' one table (pure)."""

from __future__ import annotations

import pytest

from api.problems import (
    Conflict,
    Forbidden,
    InvalidBody,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    domain_problem,
)
from collectors.gridfeed import errors as feed
from meterhub.errors import MeterhubError
from registry import errors as registry


def _subclasses(root: type[MeterhubError]) -> list[type[MeterhubError]]:
    found = [root]
    for cls in root.__subclasses__():
        found += _subclasses(cls)
    return found


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (registry.NotFoundError, NotFound),
        (registry.ConflictError, Conflict),
        (registry.InvalidError, InvalidRequest),
        (registry.UnknownTownError, InvalidRequest),
        (registry.SheetError, InvalidRequest),
        (registry.ForbiddenScopeError, Forbidden),
        (feed.FeedFormatError, InvalidBody),
        (feed.FeedMediaTypeError, UnsupportedMediaType),
        (feed.FeedTooLargeError, PayloadTooLarge),
    ],
)
def test_each_error_answers_with_its_problem(
    error: type[MeterhubError], problem: type[Problem]
) -> None:
    assert domain_problem(error("x")) is problem


def test_no_registry_or_feed_error_falls_through_to_a_500() -> None:
    leaves = [*_subclasses(registry.RegistryError)[1:], *_subclasses(feed.FeedFormatError)]
    unmapped = [cls.__name__ for cls in leaves if domain_problem(cls("x")) is Problem]
    assert not unmapped

"""GB 32100-2015 unified social credit codes (统一社会信用代码).

The database enforces the same rule with `uscc_is_valid()` (migration 0001); the tests
check that the two agree.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(body: str) -> str:
    """The 18th character for a 17-character body, e.g. ``check_character("91330782MA2ABCDE1")``."""
    if len(body) != 17 or any(ch not in ALPHABET for ch in body):
        raise ValueError(f"a code body is 17 characters from {ALPHABET!r}: {body!r}")
    total = sum(ALPHABET.index(ch) * weight for ch, weight in zip(body, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Whether ``code`` is a well-formed unified social credit code with a correct check."""
    if len(code) != 18 or any(ch not in ALPHABET for ch in code):
        return False
    return check_character(code[:17]) == code[17]

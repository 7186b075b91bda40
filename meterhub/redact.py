"""Masking of secrets in text headed for a log: the safety net behind "never log a secret".

Known shapes are masked wherever they occur in a value: API keys (``mh_<prefix>_<secret>``,
the lookup prefix is kept), ``X-API-Key`` header values, ``password=``-style pairs and the
password of a URL's user info (``postgresql://user:pass@``, ``mqtt://user:pass@``).
Long values are cut to a bounded length so that one log line never costs much.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"

#: Log values longer than this are cut (the middle goes, head and tail stay).
MAX_VALUE_CHARS = 4_000

#: Tracebacks (the ``exception`` field) longer than this are cut the same way.
MAX_TRACEBACK_CHARS = 16_000

#: Lists and mappings in a log value show at most this many items.
MAX_ITEMS = 100

# The shape of an API key made by ``registry.keys.create_key``: "mh", 8 hex digits of lookup
# prefix, then the URL-safe secret (also masked when only part of it is there).
_API_KEY = re.compile(r"mh_([0-9a-fA-F]{8})_[A-Za-z0-9_-]{6,}")

# A header value, however it is printed: ``X-API-Key: v``, ``'x-api-key': 'v'``,
# ``(b'x-api-key', b'v')``, ``x-api-key=v``.
_API_KEY_HEADER = re.compile(
    r"""(?ix)
    (?> ( x-api-key ['"]? \s* (?: [:=] | , ) \s* b? ['"]? ) ) (?! \[redacted\] )
    [^'"\s,;)\]}]+
    """
)

# ``password=v``, ``"password": "v"``, ``PGPASSWORD=v``, ``secret: v`` (not ``password auth``).
_PAIR = re.compile(
    r"""(?ix)
    (?> ( (?: password | passwd | pwd | secret | api[_-]?key | token )
          ['"]? \s* [:=] \s* b? ['"]? ) )
    (?! \[redacted\] ) [^'"\s,;&)\]}]+
    """
)

# The password in a URL's user info: ``scheme://user:password@host``.
_URL_PASSWORD = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)(?!\[redacted\]@)[^\s@/'\"]+(@)"
)


def redact_text(text: str) -> str:
    """``text`` with every known secret shape masked.

    Example: ``redact_text("postgresql://meterhub:s3cr3t@127.0.0.1/db")`` is
    ``"postgresql://meterhub:[redacted]@127.0.0.1/db"``.
    """
    text = _URL_PASSWORD.sub(rf"\1{MASK}\2", text)
    text = _API_KEY_HEADER.sub(rf"\1{MASK}", text)
    text = _API_KEY.sub(rf"mh_\1_{MASK}", text)
    return _PAIR.sub(rf"\1{MASK}", text)


#: Longer than any secret: redaction looks this far past the edges of what a cut keeps.
_MARGIN = 1_000


def bounded(text: str, limit: int) -> str:
    """``redact_text(text)`` cut to about ``limit`` characters, keeping its head and its tail
    (only the kept parts, with a margin, are scanned: a huge value costs no more than a
    small one)."""
    if len(text) <= limit:
        return redact_text(text)
    head_len = limit // 4
    tail_len = limit - head_len
    head = redact_text(text[: head_len + _MARGIN])[:head_len]
    tail = redact_text(text[-(tail_len + _MARGIN) :])[-tail_len:]
    cut = len(text) - head_len - tail_len
    return f"{head}\n... [{cut} characters cut] ...\n{tail}"


def redact_value(value: Any, *, limit: int = MAX_VALUE_CHARS) -> Any:
    """``value`` made safe to log: strings masked and bounded, containers walked,
    numbers and None kept, anything else turned into its masked ``repr``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return bounded(value, limit)
    if isinstance(value, Mapping):
        items = dict(itertools.islice(value.items(), MAX_ITEMS))
        shown = {redact_text(str(k)): redact_value(v, limit=limit) for k, v in items.items()}
        if len(value) > MAX_ITEMS:
            shown["..."] = f"{len(value) - MAX_ITEMS} more"
        return shown
    if isinstance(value, list | tuple | set | frozenset):
        listed = [redact_value(v, limit=limit) for v in itertools.islice(value, MAX_ITEMS)]
        if len(value) > MAX_ITEMS:
            listed.append(f"... {len(value) - MAX_ITEMS} more")
        return listed
    if isinstance(value, bytes | bytearray):
        return bounded(bytes(value).decode("utf-8", "replace"), limit)
    return bounded(repr(value), limit)

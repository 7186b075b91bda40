"""The audit trail: every write records which key made it."""

from __future__ import annotations

from typing import Any

import orjson

from meterhub.db import Conn
from registry.keys import Principal


async def record(
    conn: Conn,
    principal: Principal | None,
    *,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row, in the caller's transaction; ``principal`` None: an operator
    at the command line (no key)."""
    await conn.execute(
        "INSERT INTO audit_log (key_id, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
        None if principal is None else principal.key_id,
        action,
        target,
        orjson.dumps(detail or {}, default=str).decode(),
    )

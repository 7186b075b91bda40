"""Findings as the bureau and towns read them: filtered, newest first, one page at a time,
each with the rule's sentence filled in from its evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from alerts.rulebook import Rulebook
from meterhub.db import Conn

_WHERE = """
WHERE ($1::text IS NULL OR f.town = $1)
  AND ($2::text IS NULL OR f.rule = $2)
  AND ($3::text IS NULL OR f.severity = $3)
  AND ($4::text IS NULL OR f.industry LIKE $4 || '%')
  AND ($5::date IS NULL OR (f.first_week <= $5 AND f.last_week >= $5))
  AND ($6::text IS NULL OR f.status = $6)
  AND ($7::bigint IS NULL OR f.firm_id = $7)
"""

_PAGE = f"""
SELECT f.id, f.firm_id, firms.name AS firm, firms.credit_code, f.rule, f.severity, f.town,
       f.industry, f.first_week, f.last_week, f.weeks, f.status, f.closed_week, f.evidence
FROM findings f JOIN firms ON firms.id = f.firm_id
{_WHERE}
ORDER BY f.last_week DESC,
         array_position(ARRAY['high', 'medium', 'low', 'info'], f.severity), f.id
LIMIT $8 OFFSET $9
"""

_COUNT = f"SELECT count(*) FROM findings f {_WHERE}"


@dataclass(frozen=True, slots=True)
class Filters:
    town: str | None = None
    rule: str | None = None
    severity: str | None = None
    industry: str | None = None
    week: date | None = None  # findings open during that week (its Monday)
    status: str | None = None
    firm_id: int | None = None

    def args(self) -> tuple[object, ...]:
        return (
            self.town,
            self.rule,
            self.severity,
            self.industry,
            self.week,
            self.status,
            self.firm_id,
        )


async def list_findings(
    conn: Conn, *, filters: Filters, rulebook: Rulebook, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """The total matching ``filters`` and one page of them."""
    total = await conn.fetchval(_COUNT, *filters.args())
    rows = await conn.fetch(_PAGE, *filters.args(), limit, offset)
    items = []
    for row in rows:
        item = dict(row)
        evidence = json.loads(item["evidence"])
        item["evidence"] = evidence
        rule = rulebook.rules.get(item["rule"])
        item["text"] = rule.text(evidence, lang="zh") if rule else item["rule"]
        item["text_en"] = rule.text(evidence, lang="en") if rule else item["rule"]
        items.append(item)
    return int(total), items

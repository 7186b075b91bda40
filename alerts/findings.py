"""Rule hits of a week, and the findings that live across weeks.

A run of week W replaces W's rows in ``rule_hits`` whole (re-running is idempotent; a firm
keeps the town and industry its hits of W were first attributed to). Findings follow from
the hits: a hit opens a finding for its firm and rule, or updates the open one (its latest
evidence, last week, count of weeks hit); an open finding whose rule has been clean for the
rule's ``close_after_weeks`` weeks closes (hysteresis); a finding that rested only on hits
a re-run withdrew is removed. One open finding per firm and rule (partial unique index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from alerts.rulebook import Rulebook
from meterhub.db import Conn

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS rule_hits_stage (
    week date, firm_id bigint, rule text, severity text, town text, industry text,
    evidence jsonb
) ON COMMIT DROP
"""

_REPLACE = """
WITH old AS (DELETE FROM rule_hits WHERE week = $1 RETURNING firm_id, town, industry),
kept AS (SELECT DISTINCT ON (firm_id) firm_id, town, industry FROM old)
INSERT INTO rule_hits (week, firm_id, rule, severity, town, industry, evidence)
SELECT s.week, s.firm_id, s.rule, s.severity, coalesce(k.town, s.town),
       coalesce(k.industry, s.industry), s.evidence
FROM rule_hits_stage s LEFT JOIN kept k ON k.firm_id = s.firm_id
"""

_UPDATE_OPEN = """
UPDATE findings f
SET last_week = greatest(f.last_week, h.week),
    severity = h.severity,
    evidence = CASE WHEN h.week >= f.last_week THEN h.evidence ELSE f.evidence END,
    weeks = (SELECT count(*) FROM rule_hits r
             WHERE r.firm_id = f.firm_id AND r.rule = f.rule
               AND r.week BETWEEN f.first_week AND greatest(f.last_week, h.week)),
    updated_at = now()
FROM rule_hits h
WHERE h.week = $1 AND f.firm_id = h.firm_id AND f.rule = h.rule AND f.status = 'open'
"""

_OPEN_NEW = """
INSERT INTO findings (firm_id, rule, severity, town, industry, first_week, last_week, evidence)
SELECT h.firm_id, h.rule, h.severity, h.town, h.industry, h.week, h.week, h.evidence
FROM rule_hits h
WHERE h.week = $1 AND NOT EXISTS (
    SELECT 1 FROM findings f WHERE f.firm_id = h.firm_id AND f.rule = h.rule
      AND (f.status = 'open' OR (f.first_week <= h.week AND f.closed_week > h.week)))
"""

# Open findings whose latest hit was week W, which the re-run of W no longer has.
_WITHDRAWN = """
WITH lost AS (
    SELECT f.id, (SELECT max(r.week) FROM rule_hits r
                  WHERE r.firm_id = f.firm_id AND r.rule = f.rule
                    AND r.week >= f.first_week) AS last
    FROM findings f
    WHERE f.status = 'open' AND f.last_week = $1
      AND NOT EXISTS (SELECT 1 FROM rule_hits h
                      WHERE h.week = $1 AND h.firm_id = f.firm_id AND h.rule = f.rule)),
gone AS (DELETE FROM findings f USING lost WHERE f.id = lost.id AND lost.last IS NULL)
UPDATE findings f
SET last_week = lost.last,
    evidence = (SELECT r.evidence FROM rule_hits r
                WHERE r.firm_id = f.firm_id AND r.rule = f.rule AND r.week = lost.last),
    weeks = (SELECT count(*) FROM rule_hits r
             WHERE r.firm_id = f.firm_id AND r.rule = f.rule
               AND r.week BETWEEN f.first_week AND lost.last),
    updated_at = now()
FROM lost WHERE f.id = lost.id AND lost.last IS NOT NULL
"""

_CLOSE = """
UPDATE findings f
SET status = 'closed', closed_week = f.last_week + 7 * c.n, updated_at = now()
FROM unnest($2::text[], $3::int[]) AS c(rule, n)
WHERE f.status = 'open' AND f.rule = c.rule AND f.last_week + 7 * c.n <= $1
  AND NOT EXISTS (SELECT 1 FROM rule_hits h
                  WHERE h.week = $1 AND h.firm_id = f.firm_id AND h.rule = f.rule)
"""


@dataclass(frozen=True, slots=True)
class Hit:
    firm_id: int
    rule: str
    severity: str
    town: str
    industry: str
    evidence: str  # JSON object


async def store(conn: Conn, *, week: date, hits: list[Hit], rulebook: Rulebook) -> None:
    """Replace week's hits and bring the findings up to date; call inside a transaction."""
    await conn.execute(_STAGE)
    await conn.copy_records_to_table(
        "rule_hits_stage",
        records=[
            (week, h.firm_id, h.rule, h.severity, h.town, h.industry, h.evidence) for h in hits
        ],
    )
    await conn.execute(_REPLACE, week)
    await conn.execute(_UPDATE_OPEN, week)
    await conn.execute(_OPEN_NEW, week)
    await conn.execute(_WITHDRAWN, week)
    codes = list(rulebook.rules)
    await conn.execute(_CLOSE, week, codes, [rulebook[c].close_after_weeks for c in codes])

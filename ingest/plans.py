"""How a derivation pass's statements that join its temp tables to large tables are planned.

The pass's temp tables (windows, buckets, firm ranges) have no statistics and the rows a
pass replaces lie past their chunk's histogram, so the planner guesses their sizes wrong
and hash- or merge-joins them to a sequential scan of the whole table or chunk: a pass's
cost then grows with the history kept, not with its own work (seen: 246 ms to delete 6,000
rollups by scanning all 86,000; 105 ms to delete 8,000 intervals by scanning a chunk of
726,000). With hash and merge joins and sequential scans off for the one statement, it
probes the table's primary key once per temp-table row (6,000 rollups: 99 ms where the
scan of 524,000 took 544; 16,000 intervals: 22 ms).
"""

from __future__ import annotations

_OFF = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
    "SET LOCAL enable_seqscan = off;"
)
_DEFAULT = (
    "SET LOCAL enable_hashjoin = DEFAULT; SET LOCAL enable_mergejoin = DEFAULT; "
    "SET LOCAL enable_seqscan = DEFAULT;"
)


def by_key_probes(statement: str) -> str:
    """``statement`` (no parameters: run as a simple query) planned as one primary-key probe
    per row of the pass's temp table, the planner's settings restored after it. Only inside
    a transaction (SET LOCAL)."""
    return f"{_OFF}\n{statement.strip().rstrip(';')};\n{_DEFAULT}"

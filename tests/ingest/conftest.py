"""Ingest tests use the shared helpers in tests/support.py (re-exported for old imports) and
a PostgreSQL of their own for the tests that stop it (tests/pg_cluster.py)."""

from tests.pg_cluster import private_postgres
from tests.support import INSTALLED, create_meters, credit_code

__all__ = ["INSTALLED", "create_meters", "credit_code", "private_postgres"]

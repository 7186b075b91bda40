"""Ingest tests use the shared helpers in tests/support.py (re-exported for old imports)."""

from tests.support import INSTALLED, create_meters, credit_code

__all__ = ["INSTALLED", "create_meters", "credit_code"]

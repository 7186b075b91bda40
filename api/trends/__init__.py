"""Trend queries: series, rankings, intensity and production state over the rollups."""

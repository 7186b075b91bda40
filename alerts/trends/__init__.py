"""Trend queries for the bureau and towns: consumption series, rankings, intensity and
production state, all over the rollups."""

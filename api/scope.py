"""Town scoping lives in `registry.scope`; this name stays for the modules that import it
here (the trend queries)."""

from registry.scope import check_town, town_filter

__all__ = ["check_town", "town_filter"]

"""Reference data the analytics read, editable by the bureau and importable from sheets:
the holiday calendar, grid emission factors, industry benchmarks, per-mu evaluation schemes,
and each firm's dated list memberships and projects."""

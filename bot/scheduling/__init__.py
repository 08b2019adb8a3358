"""Scheduled work with exactly-once occurrences (invariant 1)."""

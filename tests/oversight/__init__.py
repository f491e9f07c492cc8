"""Oversight: how outside agencies use their access (issue 13)."""

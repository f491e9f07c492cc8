"""Synthetic demo data: a deterministic generator and the ``openpars demo`` command."""

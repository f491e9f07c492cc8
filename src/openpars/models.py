"""Imports every feature's tables so the metadata is complete (Alembic, create_all)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "openpars.identity.models",
    "openpars.records.models",
    "openpars.audit.models",
    "openpars.agreements.models",
    "openpars.governance.models",
    "openpars.access.models",
    "openpars.oversight.facts",
    "openpars.oversight.models",
    # Not tables, but DDL on them: PostgreSQL row-level security policies.
    "openpars.access.rls",
    # Not tables: the session hooks that keep visibility sets current before a commit.
    "openpars.access.visibility",
)


def load_all_models() -> None:
    """Import each feature's models module once."""
    for module in MODEL_MODULES:
        importlib.import_module(module)

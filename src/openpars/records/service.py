"""The records write side, in one import: intake, workflow, amendments, sealing, history.

The rules live in ``intake``, ``workflow`` and ``amendments``; each function takes the session
and keyword-only arguments, flushes, never commits, writes a version row for every record it
changes and appends exactly one audit entry.
"""

from __future__ import annotations

from openpars.records.amendments import amend_arrest, amend_person, history, seal_arrest
from openpars.records.intake import submit_arrest
from openpars.records.matching import find_candidates, match_candidates
from openpars.records.workflow import arraign, decide_charges, recommend_bail, record_custody

__all__ = [
    "amend_arrest",
    "amend_person",
    "arraign",
    "decide_charges",
    "find_candidates",
    "history",
    "match_candidates",
    "recommend_bail",
    "record_custody",
    "seal_arrest",
    "submit_arrest",
]

"""population_skew over a period reads the period's (agency, person) pairs once.

Its counts and its findings' entries come from one read of the period's pairs with their first
entry and attributes (one join of the facts to the persons, not two), and must equal what the
grouped counts and the findings' own statement give (the whole store's way), at the default
thresholds and at thresholds low enough for every (agency, value) to fire with few entries per
flag kept.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.db import Database
from openpars.oversight import detectors as d
from openpars.oversight.detection import DetectionPeriod, FlagDraft, Thresholds
from openpars.oversight.facts import refresh
from tests.factories import World
from tests.oversight.harness import build_traffic


def _skew(session: Session, period: DetectionPeriod, limits: Thresholds) -> tuple[Any, int]:
    """The drafts, and how many statements joined the facts to the persons."""
    joins: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "oversight_access_facts" in statement and "JOIN persons p" in statement:
            joins.append(statement)

    bind = session.connection()
    event.listen(bind, "before_cursor_execute", seen)
    try:
        drafts: list[FlagDraft] = d.population_skew(session, period, limits)
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    return sorted(drafts, key=lambda f: f.dedupe_key), len(joins)


@pytest.mark.parametrize(
    "limits",
    [
        Thresholds(),
        Thresholds(skew_z=0.0, skew_ratio=0.0, skew_min_count=1, skew_min_persons=1),
    ],
    ids=["default", "every-value"],
)
def test_a_period_reads_its_pairs_once_and_finds_the_same(
    db: Database, world: World, limits: Thresholds, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = build_traffic(db, world, seed=1)
    with db.session() as s:
        log.integrate(s)
    start = datetime.combine(traffic.start.date(), time(), traffic.start.tzinfo)
    end = datetime.combine(traffic.end.date() + timedelta(days=1), time(), traffic.end.tzinfo)
    period = DetectionPeriod(start=start, end=end)
    # Few entries per flag kept, so that which ones are kept is compared too.
    monkeypatch.setattr(d, "MAX_ENTRIES_PER_FLAG", 3)
    with db.session() as s:
        refresh(s)
        found, joins = _skew(s, period, limits)
        # The store-wide way (grouped counts in SQL, the findings' entries read apart).
        with monkeypatch.context() as m:
            m.setattr(d, "_skew_pairs", lambda _s, _p: None)
            expected, joins_apart = _skew(s, period, limits)
        s.rollback()
    assert found, "the harness's skew must fire"
    assert found == expected
    assert any(len(f.entry_ids) == 3 for f in found)
    assert joins == 1
    assert joins_apart == 2

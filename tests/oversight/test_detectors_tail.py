"""The detectors that read the log by agency or user find the same whether or not it is integrated.

An entry's (user, at) and (agency, at) reach their index (audit_user_entries,
audit_agency_entries) only when the integrator gives it a leaf; until then the detectors find it
in the log's tail (``audit.by_actor``). A misuser whose reads are not integrated yet when the
daily run starts must be flagged all the same: the findings of the detectors that read entries
(not the facts, which are made from integrated entries only) are compared with none, half and
all of the log integrated, over the whole store and day by day.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from openpars.audit import log
from openpars.audit.models import AuditEntry, AuditLeaf
from openpars.db import Database
from openpars.oversight import detectors as d
from openpars.oversight.detection import FlagDraft
from openpars.oversight.flags import DetectionPeriod
from tests.factories import World
from tests.oversight.harness import build_traffic
from tests.oversight.test_detectors_harness import _period

# The detectors whose statements read audit_entries by agency or user and instant.
ENTRY_READERS: tuple[Any, ...] = (
    d.volume_burst,
    d.off_hours,
    d.enumeration_wildcard,
    d.dormant_account,
    d.enumeration_date_sweep,
)


def _key(draft: FlagDraft) -> str:
    return draft.dedupe_key


def _findings(db: Database, period: DetectionPeriod) -> dict[str, tuple[list[FlagDraft], ...]]:
    found = {}
    with db.session() as session:
        for detector in ENTRY_READERS:
            whole = detector(session)
            daily: list[FlagDraft] = []
            day = period.start
            while day < period.end:
                daily += detector(session, DetectionPeriod(day, day + timedelta(days=1)))
                day += timedelta(days=1)
            found[detector.__name__] = (sorted(whole, key=_key), sorted(daily, key=_key))
    return found


def test_entries_not_integrated_are_judged_as_the_integrated_ones(
    db: Database, world: World
) -> None:
    traffic = build_traffic(db, world, seed=4)
    period = _period(traffic)
    with db.session() as session:
        total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        assert session.execute(select(func.count()).select_from(AuditLeaf)).scalar_one() == 0
    tail = _findings(db, period)
    with db.session() as session:
        assert 0 < log.integrate(session, limit=total // 2) < total
    half = _findings(db, period)
    with db.session() as session:
        log.integrate(session)
    indexed = _findings(db, period)
    for name, (whole, daily) in indexed.items():
        assert whole and daily, name
        assert tail[name] == (whole, daily), name
        assert half[name] == (whole, daily), name

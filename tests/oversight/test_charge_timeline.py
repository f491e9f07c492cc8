"""The charge timeline the refresh keeps: "as of t" read from intervals must say what the
decisions and approved charges themselves say, including decisions recorded after a refresh with
an earlier instant, several decisions at one instant, and a decision committed late."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.db import Database
from openpars.oversight import facts
from openpars.oversight.explain import materialise
from openpars.oversight.explain_sql import Rules, _declined, _filed
from openpars.records.enums import ChargeStage, ChargingOutcome
from openpars.records.models import Charge, ChargingDecision
from tests.conftest import BACKEND
from tests.factories import World
from tests.oversight.test_explain_rules import Log, book  # noqa: F401 - the fixture


def _live(session: Session, arrest_id: int, at: datetime) -> tuple[bool, bool]:
    """Filed and declined as of ``at``, straight from the records (the rule as written)."""
    approved = session.scalar(
        select(Charge.id).where(
            Charge.arrest_id == arrest_id,
            Charge.stage == ChargeStage.APPROVED,
            Charge.created_at <= at,
        )
    )
    latest = session.scalar(
        select(ChargingDecision.outcome)
        .where(ChargingDecision.arrest_id == arrest_id, ChargingDecision.decided_at <= at)
        .order_by(ChargingDecision.decided_at.desc(), ChargingDecision.id.desc())
        .limit(1)
    )
    declined = latest is ChargingOutcome.DECLINED
    return approved is not None and not declined, declined


def _timeline(session: Session, arrest_id: int, at: datetime) -> tuple[bool, bool]:
    filed = session.scalar(select(_filed(arrest_id, at)))
    declined = session.scalar(select(_declined(arrest_id, at)))
    return bool(filed), bool(declined)


def _instants(session: Session, arrest_id: int) -> list[datetime]:
    """Every instant the state may change, and a microsecond either side of it."""
    moments = list(
        session.scalars(
            select(ChargingDecision.decided_at).where(ChargingDecision.arrest_id == arrest_id)
        )
    ) + list(session.scalars(select(Charge.created_at).where(Charge.arrest_id == arrest_id)))
    step = timedelta(microseconds=1)
    return sorted({m + d for m in moments for d in (-step, timedelta(0), step)})


def _agrees(db: Database, arrest_ids: list[int]) -> None:
    with db.session() as s:
        facts.refresh(s)
        for arrest_id in arrest_ids:
            for at in _instants(s, arrest_id):
                assert _timeline(s, arrest_id, at) == _live(s, arrest_id, at), (arrest_id, at)


def test_the_timeline_says_what_the_records_say(book: Log) -> None:  # noqa: F811
    filed = book.b._case(False, "filed")
    declined = book.b._case(False, "declined")
    waiting = book.b._case(False, "filed")
    # Withdrawn later, then the records are read at every instant around every change.
    book.b._decide(waiting.arrest_id, "declined", book.b.t0 + timedelta(days=3))
    _agrees(book.db, [filed.arrest_id, declined.arrest_id, waiting.arrest_id])


def test_the_latest_of_two_decisions_at_one_instant_wins(book: Log) -> None:  # noqa: F811
    case = book.b._case(False, "filed")  # approved one hour after t0
    while case.docket is not None:  # arraigned: no further charging decision
        case = book.b._case(False, "filed")
    # Declined at the very instant of the approval: the later decision (higher id) stands.
    book.b._decide(case.arrest_id, "declined", book.b.t0 + timedelta(hours=1))
    at = book.access(book.b.start, [case.person_id], case_number=case.otn)
    codes = book.codes()
    assert codes[(at, case.person_id)] == "charges_declined_or_withdrawn"
    _agrees(book.db, [case.arrest_id])


def test_a_back_dated_decision_after_a_refresh_changes_the_past(book: Log) -> None:  # noqa: F811
    case = book.b._case(False, "filed")
    while case.docket is not None:
        case = book.b._case(False, "filed")
    at = book.access(book.b.start + timedelta(days=1), [case.person_id], case_number=case.otn)
    assert book.codes()[(at, case.person_id)] == "case_arrestee"  # refreshed: filed
    # Recorded now, with an instant before the access (a decision entered late).
    book.b._decide(case.arrest_id, "declined", book.b.start)
    assert book.codes()[(at, case.person_id)] == "charges_declined_or_withdrawn"
    _agrees(book.db, [case.arrest_id])


def test_a_decision_committed_after_a_higher_id_is_read_from_its_leaf(
    book: Log,  # noqa: F811
    world: World,
) -> None:
    """On PostgreSQL a decision can commit after one with a higher id was refreshed; the
    timeline's id watermark has passed it, and only its audit entry's leaf names the arrest."""
    case = book.b._case(False, "filed")
    while case.docket is not None:
        case = book.b._case(False, "filed")
    at = book.access(book.b.start + timedelta(days=1), [case.person_id], case_number=case.otn)
    assert book.codes()[(at, case.person_id)] == "case_arrestee"
    with book.db.session() as s:
        s.execute(
            update(facts.FactsWatermark)
            .where(facts.FactsWatermark.name == facts.TIMELINE_DECISIONS)
            .values(size=10**12)
        )
    book.b._decide(case.arrest_id, "declined", book.b.start)
    assert book.codes()[(at, case.person_id)] == "charges_declined_or_withdrawn"
    _agrees(book.db, [case.arrest_id])


def _forty_reads_integrated(log_of: Log) -> datetime:
    """Forty reads of one filed case's arrestee, a minute apart, the day after the log's
    start, integrated; returns the day's first instant."""
    case = log_of.b._case(False, "filed")
    start = log_of.b.start + timedelta(days=1)
    for n in range(40):
        log_of.access(start + timedelta(minutes=n), [case.person_id], case_number=case.otn)
    with log_of.db.session() as s:
        log.integrate(s)
    return start


@pytest.mark.skipif(BACKEND != "postgresql", reason="the planner's figures are PostgreSQL's")
def test_a_refresh_that_wrote_many_facts_gives_the_planner_their_figures(book: Log) -> None:  # noqa: F811
    """Any caller of the refresh (not only a cycle's explanation) gets the facts it wrote
    analysed when they are many against those the planner knew of: here every fact, so the
    planner reads the period's facts as the 40 rows they are, not as a row or two."""
    start = _forty_reads_integrated(book)
    with book.db.session() as s:
        assert facts.refresh(s).facts == 40
        plan = s.execute(
            text(
                "EXPLAIN (FORMAT JSON) SELECT * FROM oversight_access_facts "
                "WHERE at >= :lo AND at < :hi"
            ),
            {"lo": start, "hi": start + timedelta(days=1)},
        ).scalar_one()
        assert plan[0]["Plan"]["Plan Rows"] >= 30
        s.rollback()


def _scans(plan: dict[str, Any], relation: str) -> list[float]:
    """The planner's row estimates of every scan of ``relation`` in a JSON plan that reads all
    of it (a scan with a filter, such as the sweeps' facts before the period, rightly expects
    fewer)."""
    whole = plan.get("Relation Name") == relation and "Filter" not in plan
    found = [plan["Plan Rows"]] if whole else []
    for child in plan.get("Plans", []):
        found += _scans(child, relation)
    return found


@pytest.mark.skipif(BACKEND != "postgresql", reason="the planner's figures are PostgreSQL's")
def test_a_cycle_explains_facts_whose_number_the_planner_knows(book: Log) -> None:  # noqa: F811
    """A day's facts written in the explaining transaction lie past the facts' statistics (the
    planner takes them for a row or two); the cycle's statement reads them from a table
    analysed first, whose every scan the planner expects at their number."""
    start = _forty_reads_integrated(book)
    plans: list[dict[str, Any]] = []

    def plan(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "INSERT INTO oversight_cycle_pairs" in statement:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append(cursor.fetchone()[0][0]["Plan"])

    event.listen(book.db.bind, "before_cursor_execute", plan)
    try:
        with book.db.session() as s:
            cycle = materialise(
                s,
                start=start,
                end=start + timedelta(days=1),
                agreement_ids=[book.agreement],
                rules=Rules(),
            )
            assert s.execute(select(func.count()).select_from(cycle.table)).scalar_one() == 40
            s.rollback()
    finally:
        event.remove(book.db.bind, "before_cursor_execute", plan)
    (found,) = plans
    estimates = _scans(found, "oversight_cycle_facts")
    assert estimates and min(estimates) >= 30, estimates

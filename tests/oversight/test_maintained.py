"""The explanations the refresh keeps (``oversight/maintained.py``) against a recomputation.

After every kind of write that can change an explanation already kept (a back-dated decision,
an arrest renumbered, a court order's shredding, reads arriving in later increments or not
integrated yet, other rules) the kept rows equal the pairs explained from scratch, and every
renewal report read from them equals, figure for figure and week for week, the report that
explains its pairs afresh. An operator who edits the kept rows changes the report read from
them, and the recomputation (``--recompute``) and the check (``--verify``) show it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.schemas import ReadContext
from openpars.agreements.models import Agreement
from openpars.audit import log
from openpars.audit.shred import shred
from openpars.cli import app
from openpars.db import Database
from openpars.errors import Conflict
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.oversight import maintained
from openpars.oversight.explain import Period, Rules, coverage, materialise
from openpars.oversight.explain_sql import Dimension, Reason, Selection
from openpars.oversight.facts import EXPLAINED_PAIRS, AccessFact, ChargeTimeline, refresh
from openpars.oversight.report import ReportFormat, build_report, report
from openpars.records import workflow
from openpars.records.amendments import amend_arrest, seal_arrest
from openpars.records.enums import InvolvementRole
from openpars.records.models import Arrest, Involvement
from openpars.records.schemas import ArrestAmend, ChargingDecisionCreate, SealCreate
from tests.factories import World, build_world
from tests.oversight.harness import Traffic, build_traffic

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Coverage refuses a period after its today: the traffic ends before the clock's today.
TODAY = datetime.now(UTC).date()
OVERSEER = Principal(
    user_id=None, username="overseer", agency_id=None, agency_kind=None,
    roles=frozenset({Role.OVERSIGHT}),
)  # fmt: skip
# The two codes the kept rows leave open (resolved when read: ``report_sql._resolved``).
OPEN = {Reason.CASE_NOT_FOUND.value, Reason.CASE_NOT_INVOLVING_PERSON.value}


NAMES = [c.name for c in EXPLAINED_PAIRS.columns]
CODE = NAMES.index("code")


def _rows(session: Session, table: Any, *, resolved: bool = False) -> set[tuple[Any, ...]]:
    """The rows of ``table`` in the kept rows' columns; the two codes the kept rows leave open
    named "open" unless ``resolved`` (a reader's rows, every code as given)."""
    columns = [table.c[name] for name in NAMES]
    out = set()
    for row in session.execute(select(*columns)):
        values = dict(zip(NAMES, row, strict=True))
        values["at"] = values["at"].astimezone(UTC)
        out.add(tuple(values.values()))
    return out if resolved else {_opened(row) for row in out}


def _opened(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row[:CODE], "open", *row[CODE + 1 :]) if row[CODE] in OPEN else row


def _ids(session: Session) -> list[int]:
    return sorted(session.scalars(select(Agreement.id)))


def _cycle(
    session: Session, rules: Rules, start: datetime, end: datetime, *, recompute: bool
) -> set[tuple[Any, ...]]:
    """The rows of a cycle's table (``materialise``, as the daily run and the full pass fill
    it), read from the kept rows or explained afresh; every code as given (none left open)."""
    cycle = materialise(
        session,
        start=start,
        end=end,
        agreement_ids=_ids(session),
        rules=rules,
        refreshed=True,
        recompute=recompute,
    )
    rows = _rows(session, cycle.table, resolved=True)
    cycle.drop(session)
    return rows


def _days(traffic: Traffic) -> list[datetime]:
    """The first, a middle and the last day of the traffic (as daily runs judge them)."""
    first = traffic.start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = traffic.end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return [first, first + (last - first) / 2, last]


def _coverage(
    session: Session, rules: Rules, period: Period, recompute: bool
) -> list[dict[str, Any]]:
    return [
        coverage(
            session, actor=OVERSEER, period=period, rules=rules, by=by, recompute=recompute,
            today=TODAY,
        ).model_dump()
        for by in (None, *Dimension)
    ]  # fmt: skip


def _check(db: Database, traffic: Traffic, rules: Rules | None = None) -> int:
    """The kept rows equal a recomputation; the daily run's and the full pass's cycles
    (``materialise``) and coverage read from them equal those explained afresh; each
    agreement's report read from them equals the report explained afresh. The pairs
    compared."""
    rules = rules or Rules()
    with db.session() as session:
        refresh(session)
        kept = _rows(session, EXPLAINED_PAIRS)
        everything = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        fresh = _cycle(session, rules, *everything, recompute=True)
        assert kept == {_opened(row) for row in fresh}, (
            sorted(kept - {_opened(row) for row in fresh})[:5],
            sorted({_opened(row) for row in fresh} - kept)[:5],
        )
        assert _cycle(session, rules, *everything, recompute=False) == fresh
        for day in _days(traffic):
            read = _cycle(session, rules, day, day + timedelta(days=1), recompute=False)
            again = _cycle(session, rules, day, day + timedelta(days=1), recompute=True)
            assert read == again, (sorted(read - again)[:3], sorted(again - read)[:3])
        first, last = traffic.start.date(), traffic.end.date()
        for agreement_id in _ids(session)[:2]:
            period = Period(start=first, end=last, agreement_id=agreement_id)
            assert _coverage(session, rules, period, False) == _coverage(
                session, rules, period, True
            )
        first, last = traffic.start.date(), traffic.end.date()
        for agreement_id in _ids(session):
            agreement = session.get(Agreement, agreement_id)
            assert agreement is not None
            period = Period(start=first, end=last, agreement_id=agreement_id)
            read = build_report(session, agreement=agreement, period=period, rules=rules, now=NOW)
            again = build_report(
                session, agreement=agreement, period=period, rules=rules, now=NOW, recompute=True
            )
            assert read.model_dump() == again.model_dump()
    return len(kept)


def _traffic(db: Database, world: World, seed: int) -> Traffic:
    with db.session() as session:
        maintained.maintain(session, Rules())  # kept from the first refresh on
    traffic = build_traffic(db, world, seed=seed)
    return traffic


def test_kept_across_increments_and_the_log_tail(db: Database, world: World) -> None:
    """The log integrated and refreshed in small increments (reads of one sweep arriving in
    several), with entries not integrated yet (which the explanation's sweep counts too)."""
    traffic = _traffic(db, world, seed=5)
    steps = 0
    while True:
        with db.session() as session:
            done = log.integrate(session, limit=37)
            refresh(session)
        steps += 1
        if steps % 3 == 1:
            _check(db, traffic)
        if done == 0:
            break
    assert steps > 5
    assert _check(db, traffic) > 100


def _cited_arrest(session: Session) -> tuple[int, int, str]:
    """An arrest with a filed charge that an access cited by its OTN, one of its arrestees
    having been looked up: (arrest, person, OTN)."""
    f = AccessFact
    row = session.execute(
        select(Arrest.id, Involvement.person_id, Arrest.otn)
        .join(Involvement, Involvement.arrest_id == Arrest.id)
        .join(f, f.case_reference == Arrest.otn)
        .join(ChargeTimeline, ChargeTimeline.arrest_id == Arrest.id)
        .where(Involvement.role == InvolvementRole.ARRESTEE, ChargeTimeline.filed)
        .where(f.person_id == Involvement.person_id)
        .order_by(Arrest.id)
        .limit(1)
    ).one()
    return int(row[0]), int(row[1]), str(row[2])


def test_kept_after_a_late_decision_a_renumbering_and_a_shredding(
    db: Database, world: World
) -> None:
    traffic = _traffic(db, world, seed=6)
    log.integrate_all(db)
    with db.session() as session:
        # From the first leaf as a bulk load: the refresh explains every fact again.
        assert refresh(session, bulk_leaves=1).start == 0
    _check(db, traffic)
    with db.session() as session:
        arrest_id, _person, _otn = _cited_arrest(session)
    # The DA declines, back-dated to the first day: the accesses after it change.
    with db.session() as session:
        workflow.decide_charges(
            session,
            actor=world.principals["charging"],
            arrest_id=arrest_id,
            data=ChargingDecisionCreate.model_validate(
                {"outcome": "declined", "reason": "insufficient evidence"}
            ),
            now=traffic.start + timedelta(hours=1),
        )
    log.integrate_all(db)
    _check(db, traffic)
    # Another cited arrest renumbered: its old OTN now names nothing.
    with db.session() as session:
        refresh(session)
        other, _p, otn = _cited_arrest(session)
        before = session.scalar(
            select(EXPLAINED_PAIRS.c.code).where(EXPLAINED_PAIRS.c.case_reference == otn).limit(1)
        )
    assert before is not None
    with db.session() as session:
        amend_arrest(
            session,
            actor=world.principals["intake"],
            arrest_id=other,
            data=ArrestAmend.model_validate({"reason": "booking error", "otn": f"N{other:07d}-9"}),
        )
    log.integrate_all(db)
    _check(db, traffic)
    # A court order shreds the entries about a third: their pairs go, follow-ups may change.
    with db.session() as session:
        refresh(session)
        third, _p, _o = _cited_arrest(session)
        seal_arrest(
            session,
            actor=world.principals["clerk"],
            arrest_id=third,
            data=SealCreate(
                action="expunge", order_reference="CP-51-MD-0009-2026", reason="court order"
            ),
        )
        shredded = shred(
            session,
            actor=world.principals["clerk"],
            order_reference="CP-51-MD-0009-2026",
            arrest_id=third,
        )
    assert shredded
    with db.session() as session:
        # Not integrated yet: the kept rows of the shredded entries are not read.
        _check(db, traffic)
    log.integrate_all(db)
    _check(db, traffic)
    with db.session() as session:
        left = session.scalars(
            select(EXPLAINED_PAIRS.c.entry_id).where(EXPLAINED_PAIRS.c.entry_id.in_(shredded))
        ).all()
    assert left == []


def test_other_rules_are_explained_afresh_until_kept(db: Database, world: World) -> None:
    traffic = _traffic(db, world, seed=7)
    log.integrate_all(db)
    other = replace(Rules(), bulk_results=3, sweep_queries=4)
    with db.session() as session:
        refresh(session)
        assert maintained.current(session, Rules())
        assert not maintained.current(session, other)
        assert maintained.kept_rules(session) == Rules()
    # Not kept under these rules: each report explains afresh (and equals itself).
    _check_reports_only(db, traffic, other)
    with db.session() as session:
        maintained.maintain(session, other)
        assert maintained.current(session, other)
        assert maintained.rules_of(maintained.rules_json(other)) == other
    _check(db, traffic, other)
    with db.session() as session:
        maintained.stop(session)
        assert maintained.kept_rules(session) is None
        refresh(session)  # keeps nothing now
        assert session.scalar(select(EXPLAINED_PAIRS.c.entry_id).limit(1)) is None


def _check_reports_only(db: Database, traffic: Traffic, rules: Rules) -> None:
    with db.session() as session:
        for agreement_id in _ids(session):
            agreement = session.get(Agreement, agreement_id)
            assert agreement is not None
            period = Period(
                start=traffic.start.date(), end=traffic.end.date(), agreement_id=agreement_id
            )
            read = build_report(session, agreement=agreement, period=period, rules=rules, now=NOW)
            again = build_report(
                session, agreement=agreement, period=period, rules=rules, now=NOW, recompute=True
            )
            assert read.model_dump() == again.model_dump()


def test_an_edited_kept_row_is_caught_by_the_recomputation(fresh_db: Database) -> None:
    """The operator turns never-charged lookups into explained ones in the kept rows: the
    report read from them says so, the recomputed one does not, and ``verify`` refuses."""
    db = fresh_db
    with db.session() as s:
        world = build_world(s)
    traffic = _traffic(db, world, seed=8)
    log.integrate_all(db)
    first, last = traffic.start.date(), traffic.end.date()
    with db.session() as session:
        refresh(session)
        agreement_id = session.scalar(
            select(EXPLAINED_PAIRS.c.agreement_id)
            .where(EXPLAINED_PAIRS.c.code == Reason.NEVER_CHARGED.value)
            .limit(1)
        )
    assert agreement_id is not None
    overseer = Principal(
        user_id=None, username="overseer", agency_id=None, agency_kind=None,
        roles=frozenset({Role.OVERSIGHT}),
    )  # fmt: skip
    kwargs: dict[str, Any] = {
        "actor": overseer, "agreement_id": agreement_id, "start": first, "end": last,
        "rules": Rules(), "output": ReportFormat.JSON,
    }  # fmt: skip
    with db.session() as session:
        honest = report(session, **kwargs, verify=True)
    with db.session() as session:
        session.execute(
            update(EXPLAINED_PAIRS)
            .where(EXPLAINED_PAIRS.c.code == Reason.NEVER_CHARGED.value)
            .values(code="case_arrestee")
        )
    with db.session() as session:
        doctored = report(session, **kwargs)
        recomputed = report(session, **kwargs, recompute=True)
        with pytest.raises(Conflict) as refused:
            report(session, **kwargs, verify=True)
    assert refused.value.code == "report_mismatch"
    assert doctored.figure("explained").value > honest.figure("explained").value
    assert recomputed.figure("explained").value == honest.figure("explained").value
    assert recomputed.figure("reason:never_charged").value > 0
    # At the console: --verify refuses, --recompute gives the true figures.
    runner = CliRunner()
    common = ["report", "oversight", "--agreement", str(agreement_id), "--from",
              first.isoformat(), "--to", last.isoformat(), "--format", "json"]  # fmt: skip
    assert isinstance(db.bind, Engine)
    common += ["--db", db.bind.url.render_as_string(hide_password=False)]
    refused_cli = runner.invoke(app, [*common, "--verify"])
    assert refused_cli.exit_code != 0
    assert "report_mismatch" in refused_cli.output or "differs" in refused_cli.output
    fine = runner.invoke(app, [*common, "--recompute"])
    assert fine.exit_code == 0, fine.output


def test_reads_arriving_later_change_the_sweep_counts_kept(db: Database, world: World) -> None:
    """A user's reads made (or committed) after an access was explained, within the sweep
    window of it, turn it into a sweep: the kept row is explained again, both while those
    reads are not integrated and after."""
    rules = replace(Rules(), sweep_queries=4)
    with db.session() as session:
        maintained.maintain(session, rules)
    traffic = build_traffic(db, world, seed=9)
    log.integrate_all(db)
    _check(db, traffic, rules)
    with db.session() as session:
        refresh(session)
        fact = session.execute(
            select(EXPLAINED_PAIRS)
            .where(EXPLAINED_PAIRS.c.code == "case_arrestee")
            .order_by(EXPLAINED_PAIRS.c.entry_id)
            .limit(1)
        ).one()
    (who,) = [p for p in world.principals.values() if p.user_id == fact.user_id]
    context = ReadContext(purpose=fact.purpose, case_number=fact.case_reference)
    for n in range(1, 5):
        with db.session(external=True) as session:
            reads.get_person(
                session,
                principal=who,
                person_id=fact.person_id,
                context=context,
                now=fact.at.astimezone(UTC) + timedelta(seconds=n),
            )
    _check(db, traffic, rules)  # the new reads not integrated yet
    with db.session() as session:
        assert (
            session.scalar(
                select(EXPLAINED_PAIRS.c.code).where(
                    EXPLAINED_PAIRS.c.entry_id == fact.entry_id,
                    EXPLAINED_PAIRS.c.person_id == fact.person_id,
                )
            )
            == Reason.BULK_OR_ENUMERATING.value
        )
    log.integrate_all(db)
    _check(db, traffic, rules)


def test_the_daily_run_and_coverage_read_the_kept_rows(db: Database, world: World) -> None:
    """A kept row changed by hand shows in the daily run's cycle and in coverage (they read
    the kept rows, not a second explanation of their own), and not once they recompute; a
    selection by agency explains afresh (``maintained.read``)."""
    traffic = _traffic(db, world, seed=10)
    log.integrate_all(db)
    with db.session() as session:
        refresh(session)
        row = session.execute(
            select(EXPLAINED_PAIRS)
            .where(EXPLAINED_PAIRS.c.code == Reason.NEVER_CHARGED.value)
            .order_by(EXPLAINED_PAIRS.c.entry_id)
            .limit(1)
        ).one()
        session.execute(
            update(EXPLAINED_PAIRS)
            .where(
                EXPLAINED_PAIRS.c.entry_id == row.entry_id,
                EXPLAINED_PAIRS.c.person_id == row.person_id,
            )
            .values(code="case_arrestee")
        )
    day = row.at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    pair = (row.entry_id, row.person_id)

    def code_of(rows: set[tuple[Any, ...]]) -> str:
        (found,) = [r for r in rows if (r[0], r[1]) == pair]
        return str(found[CODE])

    with db.session() as session:
        refresh(session)  # the kept row is not explained again: nothing touched it
        read = _cycle(session, Rules(), day, day + timedelta(days=1), recompute=False)
        again = _cycle(session, Rules(), day, day + timedelta(days=1), recompute=True)
        assert code_of(read) == "case_arrestee"
        assert code_of(again) == Reason.NEVER_CHARGED.value
        period = Period(start=day.date(), end=day.date(), agreement_id=row.agreement_id)
        kept_total = _coverage(session, Rules(), period, False)[0]["total"]
        fresh_total = _coverage(session, Rules(), period, True)[0]["total"]
        assert kept_total["explained"] == fresh_total["explained"] + 1
        assert kept_total["reasons"]["never_charged"] + 1 == fresh_total["reasons"]["never_charged"]
        by_agency = Period(start=day.date(), end=day.date(), agency_id=row.agency_id)
        selection = Selection(start=day, end=day + timedelta(days=1), agency_id=row.agency_id)
        assert maintained.read(session, selection, Rules()) is None
        assert _coverage(session, Rules(), by_agency, False) == _coverage(
            session, Rules(), by_agency, True
        )
    assert traffic.agreements

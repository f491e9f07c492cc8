"""Each rule and reason at its edges, on entries placed in the log at chosen instants.

The records are made through the real services (``harness._Builder``); the accesses are audit
entries appended as the read service writes them, so each test controls the instant, the
citation and the persons returned exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from openpars.audit import log
from openpars.audit.events import AuditKind, event_by
from openpars.audit.service import append
from openpars.db import Database
from openpars.identity.roles import Role
from openpars.oversight.explain import Period, Rules, explain
from tests.factories import World, add_user
from tests.oversight.harness import ICE, INVESTIGATION, WARRANT, _Builder


class Log:
    """Appends ICE accesses and reads back each pair's code."""

    def __init__(self, db: Database, world: World) -> None:
        self.db, self.world = db, world
        self.b = _Builder(db, world, seed=11)
        self.b.users()
        self.agreement = self.b.agreements()[ICE]
        with db.session() as s:
            add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])

    def access(self, at: datetime, persons: list[int], user: str = "ice-0", **params: Any) -> int:
        query = params.pop("query", {"sid": "000-000-00"})
        with self.db.session() as s:
            event = event_by(
                self.world.principals[user], kind=AuditKind.SEARCH, action="person.search",
                params={"query": query, "purpose": INVESTIGATION, **params},
                person_ids=persons, agreement_id=self.agreement, agreement_version=1,
            )  # fmt: skip
            return append(s, event, at=at).id

    def codes(self, rules: Rules | None = None) -> dict[tuple[int, int], str]:
        with self.db.session() as s:
            log.integrate(s)
        with self.db.session() as s:
            period = Period(start=self.b.start.date(), end=self.b.end.date(),
                            agreement_id=self.agreement)  # fmt: skip
            page = explain(s, actor=self.world.principals["overseer"], period=period,
                           rules=rules or Rules(), limit=500)  # fmt: skip
        return {(i.entry_id, i.person_id): i.code for i in page.items}


@pytest.fixture
def book(db: Database, world: World) -> Log:
    """An empty log over an ICE agreement in force."""
    return Log(db, world)


def test_follow_up_reaches_back_exactly_its_window(book: Log) -> None:
    case, other = book.b._case(False, "filed"), book.b._case(False, "filed")
    at = book.b.start + timedelta(days=1)
    anchor = book.access(at, [case.person_id], case_number=case.otn)
    inside = book.access(at + timedelta(hours=71), [other.person_id], case_number=case.otn)
    outside = book.access(at + timedelta(hours=73), [other.person_id], case_number=case.otn)
    stranger = book.access(
        at + timedelta(hours=1), [other.person_id], "ice-1", case_number=case.otn
    )
    codes = book.codes()
    assert codes[(anchor, case.person_id)] == "case_arrestee"
    assert codes[(inside, other.person_id)] == "follow_up"
    assert codes[(outside, other.person_id)] == "case_not_involving_person"
    assert codes[(stranger, other.person_id)] == "case_not_involving_person"
    shorter = book.codes(Rules(follow_up_window=timedelta(hours=1)))
    assert shorter[(inside, other.person_id)] == "case_not_involving_person"


def test_a_follow_up_needs_an_anchor_strictly_before_it(book: Log) -> None:
    case, other, third = (book.b._case(False, "filed") for _ in range(3))
    at = book.b.start + timedelta(days=1)
    # One read returns the case's arrestee and someone else: the arrestee is explained by the
    # case, but the same read cannot be the anchor of its own other person (same instant).
    both = book.access(at, [case.person_id, other.person_id], case_number=case.otn)
    # A second read at the very same instant is not after the anchor either.
    twin = book.access(at, [third.person_id], case_number=case.otn)
    after = book.access(at + timedelta(microseconds=1), [third.person_id], case_number=case.otn)
    codes = book.codes()
    assert codes[(both, case.person_id)] == "case_arrestee"
    assert codes[(both, other.person_id)] == "case_not_involving_person"
    assert codes[(twin, third.person_id)] == "case_not_involving_person"
    assert codes[(after, third.person_id)] == "follow_up"


def test_a_follow_up_at_the_edges_of_its_window_and_beside_a_tie(book: Log) -> None:
    case, other = book.b._case(False, "filed"), book.b._case(False, "filed")
    window = Rules().follow_up_window
    period = book.b.start + timedelta(days=5)  # the cases are charged by then
    ms = timedelta(milliseconds=1)  # SQLite keeps instants to the millisecond in its shifts

    def direct(at: datetime) -> int:
        return book.access(at, [case.person_id], case_number=case.otn)

    def cited(at: datetime) -> int:
        return book.access(at, [other.person_id], case_number=case.otn)

    # An anchor exactly one window before the period's start (read as an anchor only).
    early = direct(period - window)
    # At the period's first instant: a pair exactly one window after that anchor, beside a
    # direct pair of the same instant (which it does not follow).
    edge, tie = cited(period), direct(period)
    # One millisecond past the window after the tie: no anchor in the window.
    past = cited(period + window + ms)
    # Later a direct pair and a cited one at the same instant, the last direct pair before
    # them (the tie) more than a window back: the cited pair follows nothing.
    later = period + 2 * window
    twin, lone = direct(later), cited(later)
    # And one a millisecond later follows that direct pair.
    after = cited(later + ms)
    book.b.start = period
    codes = book.codes()
    assert (early, case.person_id) not in codes  # before the period
    assert codes[(edge, other.person_id)] == "follow_up"
    assert codes[(tie, case.person_id)] == "case_arrestee"
    assert codes[(past, other.person_id)] == "case_not_involving_person"
    assert codes[(twin, case.person_id)] == "case_arrestee"
    assert codes[(lone, other.person_id)] == "case_not_involving_person"
    assert codes[(after, other.person_id)] == "follow_up"
    # A window a millisecond shorter: the edge's anchor is out of it.
    shorter = book.codes(Rules(follow_up_window=window - ms))
    assert shorter[(edge, other.person_id)] == "case_not_involving_person"


def test_charges_are_judged_as_of_the_access(book: Log) -> None:
    case = book.b._case(False, "filed")  # approved one hour after t0
    while case.docket is not None:  # arraigned: no further charging decision
        case = book.b._case(False, "filed")
    before = book.access(book.b.t0 + timedelta(minutes=30), [case.person_id], case_number=case.otn)
    after = book.access(book.b.start, [case.person_id], case_number=case.otn)
    book.b._decide(case.arrest_id, "declined", book.b.start + timedelta(days=1))
    then = book.b.start + timedelta(days=2)
    later = book.access(then, [case.person_id], "ice-1", case_number=case.otn)
    # The user who was working the case when it stood keeps working it: a follow-up.
    same = book.access(then, [case.person_id], case_number=case.otn)
    book.b.start -= timedelta(days=3)  # the period starts before t0
    codes = book.codes()
    assert codes[(before, case.person_id)] == "never_charged"
    assert codes[(after, case.person_id)] == "case_arrestee"
    assert codes[(later, case.person_id)] == "charges_declined_or_withdrawn"
    assert codes[(same, case.person_id)] == "follow_up"


def test_a_declined_case_of_a_person_charged_elsewhere(book: Log) -> None:
    declined = book.b._case(False, "declined")  # declined arrest, then one awaiting the DA
    charged = book.b._case(False, "filed")
    at = book.b.start + timedelta(days=1)
    # The declined arrest's OTN is not kept on the Case (it names the second arrest): cite that
    # one, awaiting the DA, for a person charged elsewhere.
    waiting = book.access(at, [declined.person_id], case_number=declined.otn)
    elsewhere = book.access(at, [charged.person_id], case_number=declined.otn)
    codes = book.codes()
    assert codes[(waiting, declined.person_id)] == "charges_declined_or_withdrawn"
    assert codes[(elsewhere, charged.person_id)] == "case_not_involving_person"


def test_bulk_and_sweeps_disqualify_even_a_cited_case(book: Log) -> None:
    cases = [book.b._case(False, "filed") for _ in range(10)]
    at = book.b.start + timedelta(days=1)
    people = [c.person_id for c in cases]
    bulk = book.access(at, people, case_number=cases[0].otn)
    lone = book.access(at + timedelta(days=1), people[:1], case_number=cases[0].otn)
    codes = book.codes()
    assert {codes[(bulk, p)] for p in people} == {"bulk_or_enumerating"}
    assert codes[(lone, people[0])] == "case_arrestee"
    lenient = book.codes(Rules(bulk_results=11, sweep_queries=2, sweep_window=timedelta(hours=1)))
    assert lenient[(bulk, people[0])] == "case_arrestee"
    strict = book.codes(Rules(sweep_queries=2, sweep_window=timedelta(days=2)))
    assert strict[(lone, people[0])] == "bulk_or_enumerating"


def test_the_purpose_rule_is_narrow(book: Log) -> None:
    case, pending = book.b._case(False, "filed"), book.b._case(False, "pending")
    at = book.b.start + timedelta(days=1)
    sid = {"sid": case.sid}
    ok = book.access(at, [case.person_id], query=sid, purpose=WARRANT)
    by_name = book.access(at, [case.person_id], query={"name": case.name}, purpose=WARRANT)
    two = book.access(at, [case.person_id, pending.person_id], query=sid, purpose=WARRANT)
    codes = book.codes()
    assert codes[(ok, case.person_id)] == "purpose_rule"
    assert codes[(by_name, case.person_id)] == "no_case_cited"
    assert codes[(two, case.person_id)] == "no_case_cited"
    assert codes[(two, pending.person_id)] == "never_charged"
    unknown = book.codes(Rules(caseless_purposes=frozenset()))
    assert unknown[(ok, case.person_id)] == "no_case_cited"


def test_a_case_is_found_by_otn_or_docket_in_either_letter_case(book: Log) -> None:
    case = book.b._case(False, "filed")
    while case.docket is None:
        case = book.b._case(False, "filed")
    at = book.b.start + timedelta(days=1)
    refs = [case.otn.lower(), case.docket, f"  {case.docket}  ".strip()]
    entries = [book.access(at, [case.person_id], case_number=r) for r in refs]
    codes = book.codes()
    assert {codes[(e, case.person_id)] for e in entries} == {"case_arrestee"}

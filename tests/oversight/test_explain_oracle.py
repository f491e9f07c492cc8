"""The explanation's SQL against a plain Python reading of its rules, pair by pair.

The statement in ``explain_sql`` is shaped for engines (sets joined once, windows); the rules
it implements are simple. This test states them again in Python, over the same rows (the
access facts, the arrests, the arrestees, the charge timeline, the log's external reads), and
requires every pair of the harness traffic (every rule and every reason code) and of chosen
edges (the follow-up window to the microsecond, the sweep window's start, a cycle over two
agreements of one agency) to get the same code from both: by agreement through ``explain``,
and all agreements at once through ``materialise``. A rewrite of the statement that classifies
one pair differently fails here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.oversight.explain import (
    Period,
    Reason,
    Rule,
    Rules,
    explain,
    materialise,
    purpose_grants,
)
from openpars.oversight.explain_sql import Selection
from openpars.oversight.facts import AccessFact, ChargeTimeline, refresh
from openpars.records.enums import InvolvementRole
from openpars.records.models import Arrest, Involvement
from tests.access.agreements import EXPIRES, activate, default_scope
from tests.factories import World
from tests.oversight.harness import ICE, INVESTIGATION, WARRANT, build_traffic
from tests.oversight.test_explain_rules import Log

OVERSEER = Principal(
    user_id=None, username="overseer", agency_id=None, agency_kind=None,
    roles=frozenset({Role.OVERSIGHT}),
)  # fmt: skip


@dataclass(frozen=True)
class _State:
    filed: bool
    declined: bool


def _oracle(session: Session, selection: Selection, rules: Rules) -> dict[tuple[int, int], str]:
    """Each pair of the selection's agreements and its code, by the rules of docs/oversight.md
    read plainly: a loop over the pairs, dictionaries of the records."""
    grants = {
        (g.agreement_id, g.version, g.purpose): g.case_required
        for g in purpose_grants(session, Selection(start=selection.start, end=selection.end))
    }
    since = selection.start - rules.follow_up_window
    kept = select(AuditEntry.id).where(AuditEntry.content.is_not(None))
    facts = [
        f
        for f in session.scalars(
            select(AccessFact).where(
                AccessFact.at >= since,
                AccessFact.at < selection.end,
                AccessFact.entry_id.in_(kept),
            )
        )
        if (selection.agreement_ids is None and f.agreement_id == selection.agreement_id)
        or (selection.agreement_ids is not None and f.agreement_id in selection.agreement_ids)
    ]
    by_number: dict[str, set[int]] = defaultdict(set)
    for arrest in session.scalars(select(Arrest)):
        for number in (arrest.otn, arrest.incident_number, arrest.docket_number):
            if number is not None:
                by_number[number].add(arrest.id)
    arrested: dict[int, set[int]] = defaultdict(set)
    for i in session.scalars(
        select(Involvement).where(Involvement.role == InvolvementRole.ARRESTEE)
    ):
        arrested[i.person_id].add(i.arrest_id)
    timeline: dict[int, list[ChargeTimeline]] = defaultdict(list)
    for row in session.scalars(select(ChargeTimeline)):
        timeline[row.arrest_id].append(row)
    reads: dict[int, list[datetime]] = defaultdict(list)
    for user_id, at in session.execute(
        select(AuditEntry.user_id, AuditEntry.at).where(
            AuditEntry.agreement_id.is_not(None),
            AuditEntry.kind.in_((AuditKind.SEARCH, AuditKind.READ)),
        )
    ):
        reads[user_id].append(at)

    def state(arrests: set[int], at: datetime) -> _State:
        rows = [
            r for a in arrests for r in timeline[a]
            if r.start_at <= at and (r.end_at is None or at < r.end_at)
        ]  # fmt: skip
        return _State(any(r.filed for r in rows), any(r.declined for r in rows))

    def sweep(f: AccessFact) -> int:
        w = rules.sweep_window
        # An entry exactly one window after the access is counted on PostgreSQL, not on SQLite
        # (its bound is text to the millisecond): the data here must not put one there.
        edge = [
            t for t in reads[f.user_id or -1] if abs(t - (f.at + w)) < timedelta(milliseconds=1)
        ]
        assert not edge, f"an entry at the sweep window's end of entry {f.entry_id}"
        return sum(1 for t in reads[f.user_id or -1] if f.at - w <= t <= f.at + w)

    tested: dict[int, dict[str, Any]] = {}
    for f in facts:
        ref = f.case_reference
        cited = by_number.get(ref, set()) | by_number.get(ref.upper(), set()) if ref else set()
        person = state(arrested[f.person_id], f.at)
        in_case = state(arrested[f.person_id] & cited, f.at)
        key = (f.agreement_id, f.agreement_version, f.purpose)
        purpose_ok = key in grants and (ref is not None or not grants[key])
        bulk = f.result_count >= rules.bulk_results or sweep(f) >= rules.sweep_queries
        purpose_rule = (
            f.purpose in rules.caseless_purposes and f.identifier_given and not f.name_given
            and f.result_count == 1 and person.filed
        )  # fmt: skip
        tested[f.id] = {
            "purpose_ok": purpose_ok, "bulk": bulk, "found": bool(cited),
            "case": in_case, "person": person, "purpose_rule": purpose_rule,
            "direct": purpose_ok and not bulk and (in_case.filed or purpose_rule),
        }  # fmt: skip

    def followed(f: AccessFact) -> bool:
        return f.case_reference is not None and any(
            tested[d.id]["direct"]
            for d in facts
            if d.agreement_id == f.agreement_id and d.user_id == f.user_id
            and d.case_reference == f.case_reference
            and f.at - rules.follow_up_window <= d.at < f.at
        )  # fmt: skip

    codes: dict[tuple[int, int], str] = {}
    for f in facts:
        if f.at < selection.start:
            continue
        t = tested[f.id]
        person, in_case = t["person"], t["case"]
        if not t["purpose_ok"]:
            code = Reason.PURPOSE_OUTSIDE_AGREEMENT.value
        elif t["bulk"]:
            code = Reason.BULK_OR_ENUMERATING.value
        elif in_case.filed:
            code = Rule.CASE_ARRESTEE.value
        elif t["purpose_rule"]:
            code = Rule.PURPOSE_RULE.value
        elif followed(f):
            code = Rule.FOLLOW_UP.value
        elif not person.filed and not person.declined:
            code = Reason.NEVER_CHARGED.value
        elif not person.filed or in_case.declined:
            code = Reason.CHARGES_DECLINED_OR_WITHDRAWN.value
        elif f.case_reference is None:
            code = Reason.NO_CASE_CITED.value
        elif not t["found"]:
            code = Reason.CASE_NOT_FOUND.value
        else:
            code = Reason.CASE_NOT_INVOLVING_PERSON.value
        codes[(f.entry_id, f.person_id)] = code
    return codes


def _explained(db: Database, agreement_id: int, period: Period, rules: Rules) -> dict[Any, str]:
    codes: dict[tuple[int, int], str] = {}
    with db.session() as session:
        while True:
            page = explain(
                session, actor=OVERSEER, rules=rules, offset=len(codes), limit=500,
                period=Period(start=period.start, end=period.end, agreement_id=agreement_id),
            )  # fmt: skip
            codes.update({(i.entry_id, i.person_id): i.code for i in page.items})
            if len(codes) >= page.total:
                return codes


def _compare(db: Database, agreements: list[int], period: Period, rules: Rules) -> set[str]:
    """The statement's codes, by agreement and in one cycle, equal the oracle's; the codes."""
    with db.session() as session:
        log.integrate(session)
    with db.session() as session:
        refresh(session)
    start = datetime.combine(period.start, time(), UTC)
    end = datetime.combine(period.end + timedelta(days=1), time(), UTC)
    expected: dict[tuple[int, int], str] = {}
    with db.session() as session:
        for agreement_id in agreements:
            one = _oracle(
                session, Selection(start=start, end=end, agreement_id=agreement_id), rules
            )
            assert _explained(db, agreement_id, period, rules) == one
            expected.update(one)
        every = _oracle(
            session, Selection(start=start, end=end, agreement_ids=frozenset(agreements)), rules
        )
        assert every == expected
        cycle = materialise(session, start=start, end=end, agreement_ids=agreements, rules=rules)
        t = cycle.table.c
        stored = {
            (r.entry_id, r.person_id): r.code
            for r in session.execute(select(t.entry_id, t.person_id, t.code))
        }
        cycle.drop(session)
    assert stored == expected
    return set(expected.values())


def test_every_pair_of_the_harness_traffic_gets_the_oracle_code(db: Database, world: World) -> None:
    traffic = build_traffic(db, world, seed=1)
    period = Period(start=traffic.start.date(), end=traffic.end.date())
    ids = sorted(traffic.agreements.values())
    codes = _compare(db, ids, period, Rules())
    assert codes >= {r.value for r in Rule} | {
        "bulk_or_enumerating", "never_charged", "charges_declined_or_withdrawn",
        "no_case_cited", "case_not_involving_person",
    }, codes  # fmt: skip
    # Stricter and looser thresholds move pairs between codes: the same on both sides.
    _compare(db, ids, period, Rules(follow_up_window=timedelta(hours=6), bulk_results=3,
                                    sweep_queries=4, sweep_window=timedelta(hours=2)))  # fmt: skip


def test_each_day_of_the_harness_traffic_alone_gets_the_oracle_code(
    db: Database, world: World
) -> None:
    """A day's cycle (on PostgreSQL its charge states probed by person, the facts in person
    order) gives every pair the oracle's code, the states' codes among them."""
    traffic = build_traffic(db, world, seed=1)
    ids = sorted(traffic.agreements.values())
    codes: set[str] = set()
    day = traffic.start.date()
    for _ in range(4):
        codes |= _compare(db, ids, Period(start=day, end=day), Rules())
        day += timedelta(days=1)
    assert codes >= {"never_charged", "case_arrestee", "purpose_rule"}, codes


def test_edges_and_a_cycle_over_two_agreements_of_one_agency(db: Database, world: World) -> None:
    book = Log(db, world)
    b, first = book.b, book.agreement
    case, other, third = (b._case(False, "filed") for _ in range(3))
    declined, pending = b._case(False, "declined"), b._case(False, "pending")
    at = b.start + timedelta(days=1)
    window = Rules().follow_up_window
    book.access(at, [case.person_id], case_number=case.otn)
    book.access(at + window, [other.person_id], case_number=case.otn)  # exactly the window
    book.access(at + window + timedelta(microseconds=1), [third.person_id], case_number=case.otn)
    book.access(at + timedelta(hours=1), [pending.person_id], case_number=case.otn.lower())
    book.access(at + timedelta(hours=2), [declined.person_id], case_number=declined.otn)
    book.access(at + timedelta(hours=3), [case.person_id], case_number="NO-SUCH-CASE")
    book.access(
        at + timedelta(hours=4), [case.person_id], purpose="not-granted", case_number=case.otn
    )
    book.access(at + timedelta(hours=5), [case.person_id], query={"sid": case.sid}, purpose=WARRANT)
    book.access(at + timedelta(hours=6), [other.person_id])
    # A sweep: a read without persons exactly one window before a cited read (its start is
    # included on both engines; no fact sits at a window's end).
    sweep = at + timedelta(days=2)
    book.access(sweep - Rules().sweep_window, [])
    book.access(sweep, [case.person_id], case_number=case.otn)
    # A second agreement of the same agency (the next, once the first expires; the log is
    # written directly here): its reads are explained on their own, in a cycle over both
    # too (the first agreement's anchor explains none of them).
    with db.session() as session:
        scope = default_scope(purposes=[{"purpose": INVESTIGATION}])
        name = "Immigration and Customs Enforcement second agreement"
        second = activate(
            session, world, grantee=ICE, scope=scope, name=name, effective_at=EXPIRES,
            expires_at=EXPIRES + timedelta(days=365),
        ).id  # fmt: skip
    book.agreement = second
    book.access(at + timedelta(hours=7), [other.person_id], case_number=case.otn)
    period = Period(start=b.start.date(), end=b.end.date())
    codes = _compare(db, [first, second], period, Rules())
    assert {
        "case_arrestee", "follow_up", "purpose_rule", "never_charged",
        "charges_declined_or_withdrawn", "no_case_cited", "case_not_found",
        "case_not_involving_person", "purpose_outside_agreement",
    } <= codes, codes  # fmt: skip
    _compare(db, [first, second], period, Rules(sweep_queries=2))


def test_a_days_sweeps_before_its_start_and_around_its_anchors(db: Database, world: World) -> None:
    """A day's cycle reads its users' entries from one sweep window before the day, and the
    anchors' users' from one sweep window before the follow-up window: a sweep across the
    day's start counts, and so does one around an anchor three hours before it."""
    book = Log(db, world)
    b = book.b
    case, other, third = (b._case(False, "filed") for _ in range(3))
    day = (b.start + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    w = Rules().sweep_window
    # An anchor three hours before the day, in a sweep of two with a read 20 minutes before
    # it (more than a sweep window before the day): bulk, so not the day's follower's anchor.
    book.access(day - timedelta(hours=3, minutes=20), [])
    book.access(day - timedelta(hours=3), [case.person_id], case_number=case.otn)
    follower = book.access(day + timedelta(hours=1), [other.person_id], case_number=case.otn)
    # A sweep across the day's start, by a user with no anchor: a read a minute inside the
    # window before the day.
    book.access(day - w + timedelta(minutes=1), [], "ice-1")
    edge = book.access(
        day + timedelta(minutes=1), [third.person_id], "ice-1", case_number=third.otn
    )
    period = Period(start=day.date(), end=day.date())
    codes = _compare(db, [book.agreement], period, Rules(sweep_queries=2))
    assert codes == {"bulk_or_enumerating", "case_not_involving_person"}, codes
    loose = _compare(db, [book.agreement], period, Rules(sweep_queries=3))
    assert loose == {"follow_up", "case_arrestee"}, (loose, follower, edge)

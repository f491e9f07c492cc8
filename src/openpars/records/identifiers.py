"""SIDs, FBI numbers, OTNs and docket numbers: one record each, among the records a writer sees.

A sealed or expunged record must be as absent to a writer without sealed access as one that
never existed (LEXS "black"): the same answer, no id, no name, no hint. So these identifiers
are not unique in the database. A booking officer who enters a person under the SID of someone
known only from sealed arrests gets a new person, exactly as for an unknown SID, and an arrest
under a sealed arrest's OTN is entered as for an unused OTN; the clerk with sealed access sees
both records and has them reconciled. Among the records a writer does see, intake, amendments
and the arraignment keep each identifier on one record, and on PostgreSQL those writes take
one transaction-level advisory lock first, so two of them cannot both find a number free.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openpars.access.filters import arrest_visible, person_visible
from openpars.access.policy import ReadPolicy, internal_policy
from openpars.identity.principal import Principal
from openpars.records.models import Arrest, Person
from openpars.records.versions import internal_read_policy

# The advisory lock key of writes that give out these identifiers ("opid" in ASCII).
IDENTIFIER_LOCK = 0x6F706964


def lock_identifiers(session: Session) -> None:
    """Until the commit, be the only writer giving out identifiers (PostgreSQL; SQLite's
    transactions already hold the one write lock from their first statement).

    Taken before any row lock, by every such write, so two of them never wait on each other
    in opposite orders.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IDENTIFIER_LOCK})


def visible_person_ids(
    session: Session, actor: Principal | None, ids: Iterable[int], policy: ReadPolicy | None = None
) -> set[int]:
    """Which of these persons the actor (or the policy) may see, by the enforcement point's
    rule, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    policy = policy or internal_read_policy(_given(actor))
    stmt = select(Person.id).where(Person.id.in_(wanted), person_visible(policy))
    return set(session.scalars(stmt))


def visible_arrest_ids(
    session: Session, actor: Principal | None, ids: Iterable[int], policy: ReadPolicy | None = None
) -> set[int]:
    """Which of these arrests the actor (or the policy) may see, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    policy = policy or internal_read_policy(_given(actor))
    stmt = select(Arrest.id).where(Arrest.id.in_(wanted), arrest_visible(policy))
    return set(session.scalars(stmt))


def arrest_holding(
    session: Session,
    actor: Principal,
    *,
    otn: str | None = None,
    docket_number: str | None = None,
    other_than: int | None = None,
) -> int | None:
    """The id of an arrest the actor sees holding this OTN or docket number, or None."""
    stmt = select(Arrest.id).order_by(Arrest.id)
    if otn is not None:
        stmt = stmt.where(Arrest.otn == otn)
    if docket_number is not None:
        stmt = stmt.where(Arrest.docket_number == docket_number)
    if other_than is not None:
        stmt = stmt.where(Arrest.id != other_than)
    holders = visible_arrest_ids(session, actor, session.scalars(stmt))
    return min(holders) if holders else None


def person_holding(
    session: Session,
    actor: Principal,
    person_id: int,
    *,
    sid: str | None,
    fbi_number: str | None,
) -> Person | None:
    """Another person the actor sees holding this SID or FBI number, or None."""
    clauses = []
    if sid is not None:
        clauses.append(Person.sid == sid)
    if fbi_number is not None:
        clauses.append(Person.fbi_number == fbi_number)
    if not clauses:
        return None
    found = {
        p.id: p
        for clause in clauses
        for p in session.scalars(select(Person).where(Person.id != person_id, clause))
    }
    visible = visible_person_ids(session, actor, found)
    return found[min(visible)] if visible else None


def _given(actor: Principal | None) -> Principal:
    assert actor is not None, "an actor or a policy is needed"
    return actor


def unseal_clashes(session: Session, arrest: Arrest) -> list[str]:
    """What unsealing the arrest would make visible twice to writers without sealed access.

    While it was sealed, its OTN, docket number, report id and its persons' SIDs and FBI
    numbers could be given to new records; unsealing first needs one of each corrected, so
    ordinary writers never see one identifier on two records.
    """
    ordinary = internal_policy(sealed_access=False)
    clashes: list[str] = []
    checks = [
        ("OTN", Arrest.otn == arrest.otn, arrest.otn),
        ("docket number", Arrest.docket_number == arrest.docket_number, arrest.docket_number),
        (
            "report id",
            (Arrest.source_agency_id == arrest.source_agency_id)
            & (Arrest.report_id == arrest.report_id),
            arrest.report_id,
        ),
    ]
    for what, clause, value in checks:
        if value is None:
            continue
        others = session.scalars(select(Arrest.id).where(clause, Arrest.id != arrest.id))
        for other in sorted(visible_arrest_ids(session, None, others, ordinary)):
            clashes.append(f"{what} {value} is also on arrest {other}")
    for person in dict.fromkeys(i.person for i in arrest.involvements):
        for what, column, value in (
            ("SID", Person.sid, person.sid),
            ("FBI number", Person.fbi_number, person.fbi_number),
        ):
            if value is None:
                continue
            others = session.scalars(
                select(Person.id).where(column == value, Person.id != person.id)
            )
            for other in sorted(visible_person_ids(session, None, others, ordinary)):
                clashes.append(f"{what} {value} of person {person.id} is also on person {other}")
    return clashes

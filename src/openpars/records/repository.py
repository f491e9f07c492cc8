"""All SQL of the records write side: lookups for intake and workflow, version rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, bindparam, func, or_, select
from sqlalchemy.orm import Session

from openpars.records.enums import ChargeStage, VersionedEntity
from openpars.records.models import (
    Arrest,
    Charge,
    Involvement,
    Person,
    PersonAlias,
    RecordVersion,
)


def get_arrest(session: Session, arrest_id: int, *, for_update: bool = False) -> Arrest | None:
    """One arrest by id; ``for_update`` locks the row (PostgreSQL) so steps serialise."""
    stmt = select(Arrest).where(Arrest.id == arrest_id)
    if for_update:
        stmt = stmt.with_for_update(of=Arrest)
    return session.scalars(stmt).one_or_none()


def get_person(session: Session, person_id: int, *, for_update: bool = False) -> Person | None:
    """One person by id; ``for_update`` locks the row (PostgreSQL)."""
    stmt = select(Person).where(Person.id == person_id)
    if for_update:
        stmt = stmt.with_for_update(of=Person)
    return session.scalars(stmt).one_or_none()


def get_arrest_by_report(session: Session, agency_id: int, report_id: str) -> Arrest | None:
    """The newest arrest an agency submitted under a booking report id, if any (a sealed one
    may share it with the one entered after it: records.identifiers)."""
    stmt = (
        select(Arrest)
        .where(Arrest.source_agency_id == agency_id, Arrest.report_id == report_id)
        .order_by(Arrest.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def arrests_by_report_or_otn(
    session: Session, agency_id: int, report_id: str, otn: str | None
) -> Sequence[Arrest]:
    """The arrest submitted under this report id and any holding this OTN, in one query."""
    clause = (Arrest.source_agency_id == agency_id) & (Arrest.report_id == report_id)
    if otn is not None:
        clause = clause | (Arrest.otn == otn)
    return session.scalars(select(Arrest).where(clause)).all()


def arrest_keys(
    session: Session, agency_id: int, report_ids: Iterable[str], otns: Iterable[str]
) -> list[tuple[int, int, str | None, str | None]]:
    """(id, source agency, report id, OTN) of arrests under any of an agency's report ids or
    holding any of the OTNs: one light query, no ORM objects (intake usually finds none)."""
    params = {"agency": agency_id, "reports": sorted(set(report_ids)), "otns": sorted(set(otns))}
    rows = session.connection().execute(_ARREST_KEYS, params)
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# Intake's lookups, built once: building a statement costs more than SQLite running it.
_ARREST_KEYS = select(Arrest.id, Arrest.source_agency_id, Arrest.report_id, Arrest.otn).where(
    (
        (Arrest.source_agency_id == bindparam("agency"))
        & Arrest.report_id.in_(bindparam("reports", expanding=True))
    )
    | Arrest.otn.in_(bindparam("otns", expanding=True))
)
_IDENTIFIED = select(Person.id, Person.sid, Person.fbi_number, Person.birth_date).where(
    Person.sid.in_(bindparam("sids", expanding=True))
    | Person.fbi_number.in_(bindparam("fbis", expanding=True))
)


def persons_by_identifiers(
    session: Session, *, sids: Iterable[str], fbi_numbers: Iterable[str]
) -> Sequence[Person]:
    """Persons holding any of the given SIDs or FBI numbers, in one query."""
    clause = _identifier_clause(sids, fbi_numbers)
    if clause is None:
        return []
    return session.scalars(select(Person).where(clause)).all()


def identified_persons(
    session: Session, *, sids: Iterable[str], fbi_numbers: Iterable[str]
) -> list[KnownPerson]:
    """(id, SID, FBI number, birth date) of persons holding any of the identifiers: one light
    query, no ORM objects."""
    sid_list, fbi_list = sorted(set(sids)), sorted(set(fbi_numbers))
    if not sid_list and not fbi_list:
        return []
    rows = session.connection().execute(_IDENTIFIED, {"sids": sid_list, "fbis": fbi_list})
    return [KnownPerson(*row) for row in rows]


class KnownPerson(NamedTuple):
    """The columns intake needs of a person matched by identifier."""

    id: int
    sid: str | None
    fbi_number: str | None
    birth_date: date | None


def _identifier_clause(
    sids: Iterable[str], fbi_numbers: Iterable[str]
) -> ColumnElement[bool] | None:
    sid_list, fbi_list = sorted(set(sids)), sorted(set(fbi_numbers))
    clauses: list[ColumnElement[bool]] = []
    if sid_list:
        clauses.append(Person.sid.in_(sid_list))
    if fbi_list:
        clauses.append(Person.fbi_number.in_(fbi_list))
    return or_(*clauses) if clauses else None


def persons_resembling(
    session: Session, *, name_keys: Iterable[str], birth_dates: Iterable[date], limit: int
) -> Sequence[Person]:
    """Persons whose name or alias is one of the keys (a middle name may follow), or born on
    one of the dates: the pool person matching scores, in one query."""
    keys, dates = sorted(set(name_keys)), sorted(set(birth_dates))
    clauses: list[ColumnElement[bool]] = []
    for key in keys:
        # Keys are single-spaced, so "key " .. "key!" is exactly the keys extending it by a word.
        clauses.append(Person.name_key == key)
        clauses.append((Person.name_key >= key + " ") & (Person.name_key < key + "!"))
    if keys:
        aliased = select(PersonAlias.person_id).where(PersonAlias.name_key.in_(keys))
        clauses.append(Person.id.in_(aliased))
    if dates:
        clauses.append(Person.birth_date.in_(dates))
    if not clauses:
        return []
    stmt = select(Person).where(or_(*clauses)).order_by(Person.id).limit(limit)
    return session.scalars(stmt).all()


def write_guard(session: Session) -> AbstractContextManager[Any]:
    """A savepoint around an insert that may race a concurrent twin (PostgreSQL only).

    On SQLite every transaction holds the write lock from its first statement (BEGIN
    IMMEDIATE), so two writers never race and the savepoint would be two wasted statements.
    """
    if session.get_bind().dialect.name == "sqlite":
        return nullcontext()
    return session.begin_nested()


def involvements_of_person(session: Session, person_id: int) -> Sequence[Involvement]:
    """Every involvement of a person, with its arrest."""
    stmt = select(Involvement).where(Involvement.person_id == person_id).order_by(Involvement.id)
    return session.scalars(stmt).all()


def latest_revision(session: Session, arrest_id: int, stage: ChargeStage) -> int:
    """The highest charge revision of a stage on an arrest, 0 if there is none."""
    stmt = select(func.max(Charge.revision)).where(
        Charge.arrest_id == arrest_id, Charge.stage == stage
    )
    return session.scalar(stmt) or 0


def versions(session: Session, entity: VersionedEntity, entity_id: int) -> Sequence[RecordVersion]:
    """Every version of a record, oldest first."""
    stmt = (
        select(RecordVersion)
        .where(RecordVersion.entity == entity, RecordVersion.entity_id == entity_id)
        .order_by(RecordVersion.version)
    )
    return session.scalars(stmt).all()

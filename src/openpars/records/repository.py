"""All SQL of the records write side: lookups for intake and workflow, version rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import func, or_, select
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
    """The arrest an agency submitted under a booking report id, if any."""
    stmt = select(Arrest).where(Arrest.source_agency_id == agency_id, Arrest.report_id == report_id)
    return session.scalars(stmt).one_or_none()


def arrest_id_by_otn(session: Session, otn: str) -> int | None:
    """The id of the arrest holding an OTN."""
    return session.scalar(select(Arrest.id).where(Arrest.otn == otn))


def arrest_id_by_docket(session: Session, docket_number: str) -> int | None:
    """The id of the arrest holding a Municipal Court docket number."""
    return session.scalar(select(Arrest.id).where(Arrest.docket_number == docket_number))


def person_by_sid(session: Session, sid: str) -> Person | None:
    """The person with a state identification number."""
    return session.scalars(select(Person).where(Person.sid == sid)).one_or_none()


def person_by_fbi(session: Session, fbi_number: str) -> Person | None:
    """The person with an FBI number."""
    return session.scalars(select(Person).where(Person.fbi_number == fbi_number)).one_or_none()


def persons_by_name_key(session: Session, key: str, *, limit: int) -> Sequence[Person]:
    """Persons whose name key is ``key`` or ``key`` followed by a middle name."""
    # Keys are single-spaced, so "key " .. "key!" is exactly the keys extending it by a word.
    stmt = (
        select(Person)
        .where(
            or_(
                Person.name_key == key,
                (Person.name_key >= key + " ") & (Person.name_key < key + "!"),
            )
        )
        .order_by(Person.id)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def persons_by_alias_key(session: Session, key: str, *, limit: int) -> Sequence[Person]:
    """Persons with an alias whose name key is exactly ``key``."""
    stmt = (
        select(Person)
        .join(PersonAlias, PersonAlias.person_id == Person.id)
        .where(PersonAlias.name_key == key)
        .order_by(Person.id)
        .limit(limit)
    )
    return session.scalars(stmt).unique().all()


def persons_born_on(session: Session, birth_date: date, *, limit: int) -> Sequence[Person]:
    """Persons with a given birth date."""
    stmt = select(Person).where(Person.birth_date == birth_date).order_by(Person.id).limit(limit)
    return session.scalars(stmt).all()


def involvements_of_person(session: Session, person_id: int) -> Sequence[Involvement]:
    """Every involvement of a person, with its arrest."""
    stmt = select(Involvement).where(Involvement.person_id == person_id).order_by(Involvement.id)
    return session.scalars(stmt).all()


def person_has_unsealed_involvement(session: Session, person_id: int) -> bool:
    """Whether a person appears in at least one arrest that is neither sealed nor expunged."""
    stmt = (
        select(Involvement.id)
        .join(Arrest, Arrest.id == Involvement.arrest_id)
        .where(
            Involvement.person_id == person_id,
            Arrest.sealed_at.is_(None),
            Arrest.expunged_at.is_(None),
        )
        .limit(1)
    )
    return session.scalar(stmt) is not None


def person_has_involvement(session: Session, person_id: int) -> bool:
    """Whether a person appears in any arrest at all."""
    stmt = select(Involvement.id).where(Involvement.person_id == person_id).limit(1)
    return session.scalar(stmt) is not None


def latest_revision(session: Session, arrest_id: int, stage: ChargeStage) -> int:
    """The highest charge revision of a stage on an arrest, 0 if there is none."""
    stmt = select(func.max(Charge.revision)).where(
        Charge.arrest_id == arrest_id, Charge.stage == stage
    )
    return session.scalar(stmt) or 0


def add(session: Session, rows: Iterable[object]) -> None:
    """Stage new rows and flush them, so their ids are known."""
    session.add_all(list(rows))
    session.flush()


def versions(session: Session, entity: VersionedEntity, entity_id: int) -> Sequence[RecordVersion]:
    """Every version of a record, oldest first."""
    stmt = (
        select(RecordVersion)
        .where(RecordVersion.entity == entity, RecordVersion.entity_id == entity_id)
        .order_by(RecordVersion.version)
    )
    return session.scalars(stmt).all()


def other_person_with(
    session: Session, person_id: int, *, sid: str | None, fbi_number: str | None
) -> Person | None:
    """Another person already holding this SID or FBI number."""
    clauses = []
    if sid is not None:
        clauses.append(Person.sid == sid)
    if fbi_number is not None:
        clauses.append(Person.fbi_number == fbi_number)
    if not clauses:
        return None
    stmt = select(Person).where(Person.id != person_id, or_(*clauses)).limit(1)
    return session.scalars(stmt).first()

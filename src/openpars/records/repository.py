"""All SQL of the records write side: lookups for intake and workflow, version rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, or_, select
from sqlalchemy.orm import Session

from openpars.db import Base
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


def arrests_by_report_or_otn(
    session: Session, agency_id: int, report_id: str, otn: str | None
) -> Sequence[Arrest]:
    """The arrest submitted under this report id and any holding this OTN, in one query."""
    clause = (Arrest.source_agency_id == agency_id) & (Arrest.report_id == report_id)
    if otn is not None:
        clause = clause | (Arrest.otn == otn)
    return session.scalars(select(Arrest).where(clause)).all()


def arrest_id_by_otn(session: Session, otn: str) -> int | None:
    """The id of the arrest holding an OTN."""
    return session.scalar(select(Arrest.id).where(Arrest.otn == otn))


def arrest_id_by_docket(session: Session, docket_number: str) -> int | None:
    """The id of the arrest holding a Municipal Court docket number."""
    return session.scalar(select(Arrest.id).where(Arrest.docket_number == docket_number))


def persons_by_identifiers(
    session: Session, *, sids: Iterable[str], fbi_numbers: Iterable[str]
) -> Sequence[Person]:
    """Persons holding any of the given SIDs or FBI numbers, in one query."""
    sid_list, fbi_list = sorted(set(sids)), sorted(set(fbi_numbers))
    clauses: list[ColumnElement[bool]] = []
    if sid_list:
        clauses.append(Person.sid.in_(sid_list))
    if fbi_list:
        clauses.append(Person.fbi_number.in_(fbi_list))
    if not clauses:
        return []
    return session.scalars(select(Person).where(or_(*clauses))).all()


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


def insert_new(session: Session, objects: Sequence[Base], *, set_ids: bool = True) -> None:
    """Insert new rows of one table, given as ORM objects kept out of the session, and set ids.

    Intake writes a dozen rows per arrest; a Core INSERT with the rows as parameters costs a
    fraction of the unit of work's bookkeeping for the same rows. Every column must be set on
    the objects (no defaults apply); the objects stay transient, so later reads load them.
    """
    if not objects:
        return
    table = cast(Table, type(objects[0]).__table__)
    columns = [c for c in table.columns if c.key != "id"]
    rows = [{c.key: getattr(obj, c.key) for c in columns} for obj in objects]
    if not set_ids:
        session.execute(insert(table), rows)  # one executemany, nothing to read back
        return
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = session.execute(stmt, rows).scalars().all()
    for obj, new_id in zip(objects, ids, strict=True):
        obj.id = new_id  # type: ignore[attr-defined]


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

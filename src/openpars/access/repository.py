"""All SQL of the read path. Every statement carries the policy's row filter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from openpars.access.filters import arrest_visible, person_visible, visible_involvement
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import ArrestQuery, PersonQuery
from openpars.audit.models import AuditEntry
from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias
from openpars.records.validation import name_key, prefix_upper_bound

T = TypeVar("T")

# Totals are exact up to this many rows, then reported as "at least".
TOTAL_CAP = 200


def _name_range(column: Any, prefix: str) -> ColumnElement[bool]:
    key = name_key(prefix)
    return and_(column >= key, column < prefix_upper_bound(key))


def person_branches(policy: ReadPolicy, query: PersonQuery) -> list[Select[Person]]:
    """The statements of a person search, each in name-index order.

    A name search is two branches: persons whose own name matches, and persons matching only
    by an alias. Kept apart, each branch walks its name index in order and stops after a page
    of visible rows; an OR of the two would make both engines gather and sort every match.
    """
    stmt = select(Person).where(person_visible(policy))
    if query.sid is not None:
        stmt = stmt.where(Person.sid == query.sid)
    if query.fbi_number is not None:
        stmt = stmt.where(Person.fbi_number == query.fbi_number)
    if query.birth_date is not None:
        stmt = stmt.where(Person.birth_date == query.birth_date)
    order = (Person.name_key, Person.id)
    if query.name is None:
        return [stmt.order_by(*order)]
    own = _name_range(Person.name_key, query.name)
    aliases = select(PersonAlias.person_id).where(_name_range(PersonAlias.name_key, query.name))
    return [
        stmt.where(own).order_by(*order),
        stmt.where(Person.id.in_(aliases), ~own).order_by(*order),
    ]


def search_page(
    session: Session, branches: list[Select[Person]], *, offset: int, limit: int
) -> tuple[list[Person], int, bool]:
    """One page merged from the branches in name order, and the capped total."""
    if len(branches) == 1:
        rows, total = page_with_count(session, branches[0], offset=offset, limit=limit)
        return rows, min(total, TOTAL_CAP), total <= TOTAL_CAP
    merged: list[Person] = []
    total = 0
    for branch in branches:
        # Each branch supplies the first offset + limit rows; the merge picks the page.
        rows, count = page_with_count(session, branch, offset=0, limit=offset + limit)
        merged += rows
        total += count
    merged.sort(key=lambda p: (p.name_key, p.id))
    return merged[offset : offset + limit], min(total, TOTAL_CAP), total <= TOTAL_CAP


def page_with_count(
    session: Session, stmt: Select[T], *, offset: int, limit: int
) -> tuple[list[T], int]:
    """A page and the statement's row count (capped at TOTAL_CAP + 1).

    A short page that starts at the beginning, or that is not empty, already tells the count,
    so the common exact-identifier lookup runs one statement instead of two.
    """
    rows = page(session, stmt, offset=offset, limit=limit)
    if len(rows) < limit and (offset == 0 or rows):
        return rows, offset + len(rows)
    return rows, capped_count(session, stmt)


def arrest_search(policy: ReadPolicy, query: ArrestQuery) -> Select[Arrest]:
    """Arrests matching the criteria that the policy lets the caller see."""
    stmt = select(Arrest).where(arrest_visible(policy))
    exact = {
        Arrest.otn: query.otn,
        Arrest.incident_number: query.incident_number,
        Arrest.docket_number: query.docket_number,
        Arrest.state: query.state,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if query.arrested_from is not None:
        stmt = stmt.where(Arrest.arrested_at >= query.arrested_from)
    if query.arrested_to is not None:
        stmt = stmt.where(Arrest.arrested_at < query.arrested_to)
    if query.statute is not None:
        stmt = stmt.where(
            Arrest.id.in_(select(Charge.arrest_id).where(Charge.statute == query.statute))
        )
    return stmt.order_by(Arrest.arrested_at.desc(), Arrest.id.desc())


def page(session: Session, stmt: Select[T], *, offset: int, limit: int) -> list[T]:
    """One page of a filtered statement."""
    return list(session.scalars(stmt.offset(offset).limit(limit)).unique().all())


def capped_count(session: Session, stmt: Select[T]) -> int:
    """How many rows the filtered statement has, counting no further than TOTAL_CAP + 1."""
    capped = stmt.order_by(None).limit(TOTAL_CAP + 1).subquery()
    return session.scalar(select(func.count()).select_from(capped)) or 0


def visible_person(session: Session, policy: ReadPolicy, person_id: int) -> Person | None:
    """One person, or None if missing or invisible (the two are indistinguishable)."""
    return session.scalars(
        select(Person).where(Person.id == person_id, person_visible(policy))
    ).one_or_none()


def visible_involvements_of_person(
    session: Session, policy: ReadPolicy, person_id: int
) -> list[Involvement]:
    """A person's involvements that the policy shows."""
    stmt = (
        select(Involvement)
        .where(Involvement.person_id == person_id, visible_involvement(policy))
        .order_by(Involvement.id)
    )
    return list(session.scalars(stmt).all())


def visible_arrest(session: Session, policy: ReadPolicy, arrest_id: int) -> Arrest | None:
    """One arrest, or None if missing or invisible."""
    return session.scalars(
        select(Arrest).where(Arrest.id == arrest_id, arrest_visible(policy))
    ).one_or_none()


def visible_involvements_of_arrest(
    session: Session, policy: ReadPolicy, arrest_id: int
) -> list[Involvement]:
    """An arrest's involvements that the policy shows (the arrest itself already passed)."""
    stmt = (
        select(Involvement)
        .where(Involvement.arrest_id == arrest_id, visible_involvement(policy))
        .order_by(Involvement.id)
    )
    return list(session.scalars(stmt).all())


def recent_reads(
    session: Session, *, user_id: int | None, agency_id: int | None, since: datetime
) -> Sequence[datetime]:
    """Times of audited accesses by a user (or an agency) since an instant, oldest first."""
    stmt = select(AuditEntry.at).where(AuditEntry.at >= since)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    else:
        stmt = stmt.where(AuditEntry.agency_id == agency_id)
    return session.scalars(stmt.order_by(AuditEntry.at)).all()

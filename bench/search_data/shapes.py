"""Query shapes the search benchmark compares with the shipped ``access.repository`` one.

Until 2026-11-28 the shipped name condition was ``name_key in range OR id IN (alias matches)``;
neither engine could walk the name index in order under that OR, so every match was gathered,
filtered and sorted before LIMIT 50 (SQLite), or the whole index was walked (PostgreSQL).
Proposal B below (two index-ordered branches) is now what ``access.repository`` ships as
``person_branches`` + ``search_page``; the one-statement UNION ALL shape (A) stays for
comparison."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, union_all
from sqlalchemy.orm import Session

from openpars.access import repository as repo
from openpars.access.filters import person_visible
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import PersonQuery
from openpars.records.models import Person, PersonAlias
from openpars.records.validation import name_key, prefix_upper_bound


def no_policy_stmt(query: PersonQuery) -> Any:
    """The bare search with no policy predicate (own name or alias in one statement)."""
    stmt = select(Person)
    if query.sid is not None:
        stmt = stmt.where(Person.sid == query.sid)
    if query.name is not None:
        aliases = select(PersonAlias.person_id).where(_range(PersonAlias.name_key, query.name))
        stmt = stmt.where(_range(Person.name_key, query.name) | Person.id.in_(aliases))
    return stmt.order_by(Person.name_key, Person.id)


def _range(column: Any, name: str) -> ColumnElement[bool]:
    key = name_key(name)
    return (column >= key) & (column < prefix_upper_bound(key))  # type: ignore[no-any-return]


def union_stmt(policy: ReadPolicy, query: PersonQuery) -> Any:
    """Proposal A: ``id IN (primary range UNION ALL alias range)``, one statement."""
    name = query.name or ""
    matches = union_all(
        select(Person.id).where(_range(Person.name_key, name)),
        select(PersonAlias.person_id).where(_range(PersonAlias.name_key, name)),
    )
    stmt = select(Person).where(person_visible(policy), Person.id.in_(matches))
    return stmt.order_by(Person.name_key, Person.id)


def split_primary_stmt(policy: ReadPolicy, query: PersonQuery) -> Any:
    """Proposal B's primary-name branch, index-ordered (for the plans)."""
    stmt = select(Person).where(person_visible(policy), _range(Person.name_key, query.name or ""))
    return stmt.order_by(Person.name_key, Person.id)


def split_search(
    session: Session, policy: ReadPolicy, query: PersonQuery, *, offset: int, limit: int
) -> tuple[list[Person], int]:
    """Proposal B: primary-name and alias-only matches as two index-ordered statements.

    Each statement walks its name index in order and stops after offset + limit visible rows;
    the pages are merged in Python. The total adds the two capped counts (the alias branch
    excludes persons whose primary name already matches, so nobody is counted twice).
    """
    name = query.name or ""
    visible = person_visible(policy)
    primary = select(Person).where(visible, _range(Person.name_key, name))  # = split_primary
    alias_ids = select(PersonAlias.person_id).where(_range(PersonAlias.name_key, name))
    alias_only = select(Person).where(
        visible, Person.id.in_(alias_ids), ~_range(Person.name_key, name)
    )
    rows: list[Person] = []
    total = 0
    for stmt in (primary, alias_only):
        ordered = stmt.order_by(Person.name_key, Person.id)
        rows += repo.page(session, ordered, offset=0, limit=offset + limit)
        capped = stmt.limit(repo.TOTAL_CAP + 1).subquery()
        total += session.scalar(select(func.count()).select_from(capped)) or 0
    rows.sort(key=lambda p: (p.name_key, p.id))
    return rows[offset : offset + limit], min(total, repo.TOTAL_CAP + 1)

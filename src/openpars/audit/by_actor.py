"""Entries by user or agency and instant: the integrator's index and the tail not integrated yet.

An append writes its entry at the end of the log's B-tree and nowhere else (issue 12): the
entry table has no index of its own by user or by agency. The integrator copies each batch's
(user, at, entry) and (agency, at, entry) into ``audit_user_entries`` and
``audit_agency_entries`` in the transaction that gives the batch its leaves
(``index_actors``), so an entry is in those tables exactly when it has a leaf. Every reader by
user or agency goes through this module, which reads the table UNION ALL the entries not
integrated yet (SQLite: above the last leaf, by rowid; PostgreSQL: those in ``audit_pending``,
by primary key), as ``repository.entries_naming`` does for subjects. One statement's snapshot
finds every entry in exactly one of the two places: an entry appended a moment ago is found by
a user's own entries, the detectors, the reports and the transparency counts like any other
(the rate limits never read the log: access.rate keeps its own windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, CompoundSelect, Select, func, select, union_all
from sqlalchemy.orm import Session

from openpars.audit.models import (
    AuditAgencyEntry,
    AuditEntry,
    AuditLeaf,
    AuditPending,
    AuditUserEntry,
)
from openpars.audit.repository import _SQLITE_LAST_INTEGRATED

Actor = Literal["user_id", "agency_id"]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --- the integrator -------------------------------------------------------------------------


def index_actors(session: Session, entry_ids: Sequence[int]) -> None:
    """Copy the batch's (user, at, id) and (agency, at, id) into the two tables, one sorted
    INSERT ... SELECT each, in the transaction that writes the batch's leaves. Entries without
    a user (or an agency) have no row in that table; no reader asks for NULL."""
    if not entry_ids:
        return
    params: tuple[Any, ...] = ()
    if _dialect(session) == "postgresql":
        # A batch on PostgreSQL is the queue's lowest ids, not a range (see index_subjects).
        where, params = "id = ANY(%s::bigint[])", ([int(i) for i in entry_ids],)
    else:
        where = f"id BETWEEN {int(min(entry_ids))} AND {int(max(entry_ids))}"
    connection = session.connection()
    for column, table in (("user_id", "audit_user_entries"), ("agency_id", "audit_agency_entries")):
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({column}, at, entry_id) "  # noqa: S608 - constants, integers
            f"SELECT {column}, at, id FROM audit_entries WHERE {where} "
            f"AND {column} IS NOT NULL ORDER BY 1, 2, 3",
            params,
        )


# --- readers as SQL text (the detectors' statements) -----------------------------------------


def pending_sql(dialect: str) -> str:
    """A SELECT of one column: the ids of the entries not integrated yet (few: the log's tail)."""
    if dialect == "postgresql":
        return "SELECT entry_id FROM audit_pending"
    return f"SELECT id FROM audit_entries WHERE id > {_SQLITE_LAST_INTEGRATED}"  # noqa: S608


def entries_by_sql(dialect: str, column: Actor, keys: str, lo: str, hi: str) -> str:
    """A SELECT of one column (entry_id): the entries whose ``column`` is in ``keys`` (SQL: a
    parenthesised list or subquery) with ``:lo`` <= at < ``:hi`` (parameter names), integrated
    or not, each once."""
    table = "audit_user_entries" if column == "user_id" else "audit_agency_entries"
    bounds = f"at >= :{lo} AND at < :{hi}"
    indexed = f"SELECT entry_id FROM {table} WHERE {column} IN {keys} AND {bounds}"  # noqa: S608
    if dialect == "postgresql":
        # = ANY(ARRAY(queue)): the queue read once, each id looked up by primary key.
        tail = "id = ANY(ARRAY(SELECT entry_id FROM audit_pending))"
    else:
        tail = f"id > {_SQLITE_LAST_INTEGRATED}"
    return (
        f"{indexed} UNION ALL SELECT id FROM audit_entries "  # noqa: S608 - fixed fragments
        f"WHERE {tail} AND {column} IN {keys} AND {bounds}"
    )


# --- readers as expressions ------------------------------------------------------------------


def entries_by(
    dialect: str,
    column: Actor,
    keys: ColumnElement[Any] | Select[Any] | Sequence[int],
    *,
    start: datetime | ColumnElement[Any] | None = None,
    end: datetime | ColumnElement[Any] | None = None,
    end_inclusive: bool = False,
) -> CompoundSelect[Any]:
    """The ids (column ``entry_id``) of the entries whose ``column`` is ``keys`` (a column,
    compared with =, e.g. a correlated one) or in ``keys`` (a select or a list), with
    start <= at < end (<= end with ``end_inclusive``), integrated or not, each once."""
    table = AuditUserEntry if column == "user_id" else AuditAgencyEntry
    # Aliased: the caller's statement may read audit_entries itself (a correlated count).
    entry = AuditEntry.__table__.alias("tail")

    def where(key: Any, at: Any) -> list[ColumnElement[bool]]:
        found = [key == keys if isinstance(keys, ColumnElement) else key.in_(keys)]
        if start is not None:
            found.append(at >= start)
        if end is not None:
            found.append(at <= end if end_inclusive else at < end)
        return found

    # Correlated to whatever else ``keys`` and the bounds name (a compound select inside IN
    # is not correlated by default).
    indexed = (
        select(table.entry_id.label("entry_id"))
        .where(*where(getattr(table, column), table.at))
        .correlate_except(table)
    )
    if dialect == "postgresql":
        tail: ColumnElement[bool] = entry.c.id == func.any(
            func.array(select(AuditPending.entry_id).scalar_subquery())
        )
    else:
        last = (
            select(AuditLeaf.entry_id)
            .order_by(AuditLeaf.leaf_index.desc())
            .limit(1)
            .scalar_subquery()
        )
        tail = entry.c.id > func.coalesce(last, 0)
    pending = (
        select(entry.c.id.label("entry_id"))
        .where(tail, *where(entry.c[column], entry.c.at))
        .correlate_except(entry, AuditLeaf, AuditPending)
    )
    return union_all(indexed, pending)

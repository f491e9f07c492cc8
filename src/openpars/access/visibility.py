"""Build and keep visibility sets (see ``access.models``); find a policy's set for a search.

Every set is computed with ``access.filters.person_visible``, the predicate every read uses,
so a set holds exactly the persons a probe would pass. The database triggers remove and mark;
this module recomputes: before a transaction that wrote records commits (``refresh`` through
the session hook below), and from the governance tick for anything a writer left pending.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, event, exists, func, literal, select, text
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from openpars.access.filters import person_visible
from openpars.access.models import (
    COPIED_COLUMNS,
    VisibilityPending,
    VisibilitySet,
    VisiblePerson,
)
from openpars.access.policy import ReadPolicy
from openpars.prepared import param, prepared
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.models import Arrest, Charge, Involvement, Person

log = logging.getLogger(__name__)

# session.info key: this transaction wrote records, so pending persons may wait for it.
_WROTE = "openpars.visibility.wrote"
_RECORD_TYPES = (Person, Involvement, Arrest, Charge)
_PENDING = cast(Table, VisibilityPending.__table__)
_VISIBLE = VisiblePerson.__table__
_SETS_T = cast(Table, VisibilitySet.__table__)
# Persons recomputed per statement.
_CHUNK = 500


def spec_of(policy: ReadPolicy) -> dict[str, Any]:
    """The row filter of a policy as plain data (what a set is keyed by and rebuilt from)."""
    return _spec(policy.row_key())


def _spec(filter_key: tuple[Any, ...]) -> dict[str, Any]:
    roles, include_sealed, exclude_juveniles, states, grades = filter_key[:5]

    def values(items: frozenset[Any] | None) -> list[str] | None:
        return None if items is None else sorted(item.value for item in items)

    return {
        "roles": values(roles),
        "include_sealed": include_sealed,
        "exclude_juveniles": exclude_juveniles,
        "arrest_states": values(states),
        "grades": values(grades),
    }


def row_key(policy: ReadPolicy) -> str:
    """The canonical text of a policy's row filter."""
    return _row_key(policy.row_key())


@lru_cache(maxsize=256)
def _row_key(filter_key: tuple[Any, ...]) -> str:
    return json.dumps(_spec(filter_key), sort_keys=True, separators=(",", ":"))


def policy_of(spec: dict[str, Any]) -> ReadPolicy:
    """A policy with a stored set's row filter (its fields do not matter here)."""

    def parsed(kind: Any, items: list[str] | None) -> frozenset[Any] | None:
        return None if items is None else frozenset(kind(item) for item in items)

    return ReadPolicy(
        external=True,
        roles=parsed(InvolvementRole, spec["roles"]),
        include_sealed=spec["include_sealed"],
        exclude_juveniles=spec["exclude_juveniles"],
        arrest_states=parsed(ArrestState, spec["arrest_states"]),
        grades=parsed(Grade, spec["grades"]),
    )


def set_key(session: Session, policy: ReadPolicy) -> str | None:
    """The row key to search this policy's set by, or None (not external: probes).

    The statements find the set by this key themselves, so a result always comes from the
    set of this very filter; a search that finds nothing asks ``set_exists`` whether the set
    was there at all. Persons this transaction changed are recomputed first.
    """
    if not policy.external:
        return None
    if session.info.get(_WROTE):
        refresh(session)
    return row_key(policy)


def needs_refresh(session: Session) -> bool:
    """Whether this transaction changed persons, so ``set_key`` would recompute them first."""
    return bool(session.info.get(_WROTE))


def set_exists(session: Session, key: str) -> bool:
    """Whether a set is kept for this row key (a set is removed only once no version in force
    uses it)."""
    return _set_id(session, key) is not None


def _set_id(session: Session, key: str) -> int | None:
    found = prepared(session, ("visibility_set",), _set_stmt).scalar(session, {"vis_key": key})
    return None if found is None else int(found)


def _set_stmt() -> Any:
    t = _SETS_T.c
    return select(t.id).where(t.row_key == param("vis_key", t.row_key))


def set_id_of_key() -> ColumnElement[int]:
    """The id of the set whose row key is bound as ``vis_key`` (NULL if there is none)."""
    return _set_stmt().scalar_subquery()  # type: ignore[no-any-return]


def visible_in_set(person_id: ColumnElement[int]) -> ColumnElement[bool]:
    """The person is in the set of the row key bound as ``vis_key``."""
    v = _VISIBLE.c
    return exists(select(v.person_id).where(v.person_id == person_id, v.set_id == set_id_of_key()))


def ensure_set(session: Session, policy: ReadPolicy) -> int:
    """The set for this policy's row filter, built now (every visible person) if missing.

    On PostgreSQL the build holds off record writers until it commits (SHARE locks on the
    tables visibility depends on): a writer's triggers only see sets already committed, so a
    change made during the build could otherwise leave it stale.
    """
    key = row_key(policy)
    existing = _set_id(session, key)
    if existing is not None:
        return existing
    _lock_writers(session)
    refresh(session)
    set_id = session.scalar(
        _SETS_T.insert().values(row_key=key, spec=spec_of(policy)).returning(_SETS_T.c.id)
    )
    assert set_id is not None
    session.execute(_VISIBLE.insert().from_select(_ROW, _rows_of(set_id, person_visible(policy))))
    # Fresh statistics: planned without them (SQLite) or with the empty table's (PostgreSQL),
    # the alias section walked every row of the set (40-70 ms at 1M persons) instead of
    # looking up the few persons the alias matches name.
    session.execute(text("ANALYZE visible_persons"))
    count = session.scalar(select(func.count()).where(_VISIBLE.c.set_id == set_id))
    log.info("visibility set %s built for %s: %s persons", set_id, key, count)
    return int(set_id)


def drop_sets_except(session: Session, keep: Collection[int]) -> list[int]:
    """Remove every set not in ``keep`` (the sets of the versions in force); their ids.

    A search whose set goes away finds nothing in it and falls back to the probes; a set is
    built again when a decision puts a version with its filter back in force.
    """
    kept = set(keep)
    unused = [i for i in session.scalars(select(_SETS_T.c.id)) if i not in kept]
    if unused:
        _lock_writers(session)
        session.execute(_VISIBLE.delete().where(_VISIBLE.c.set_id.in_(unused)))
        session.execute(_SETS_T.delete().where(_SETS_T.c.id.in_(unused)))
        log.info("visibility sets %s removed: no version in force uses them", unused)
    return unused


def _lock_writers(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE persons, involvements, arrests, charges IN SHARE MODE"))


def refresh(session: Session) -> int:
    """Recompute every pending person in every set; returns how many persons were pending."""
    session.flush()
    session.info.pop(_WROTE, None)
    pending = sorted(session.execute(_PENDING.delete().returning(_PENDING.c.person_id)).scalars())
    if not pending:
        return 0
    sets = session.execute(select(_SETS_T.c.id, _SETS_T.c.spec)).all()
    for start in range(0, len(pending), _CHUNK):
        chunk = pending[start : start + _CHUNK]
        if session.get_bind().dialect.name == "postgresql":
            # Persons another transaction left pending: lock them as their writers' triggers
            # do, so a concurrent change to one is seen before it is recomputed.
            session.execute(
                select(Person.id).where(Person.id.in_(chunk)).order_by(Person.id).with_for_update()
            )
        session.execute(_VISIBLE.delete().where(_VISIBLE.c.person_id.in_(chunk)))
        for set_id, spec in sets:
            visible = person_visible(policy_of(spec))
            rows = _rows_of(set_id, Person.id.in_(chunk), visible)
            session.execute(_VISIBLE.insert().from_select(_ROW, rows))
    return len(pending)


# A set row: which set, which person, the name key, the copied columns and the person's
# floor flag (access.models: the trigger that checks it refuses any other value).
_ROW = ["set_id", "person_id", "name_key", *COPIED_COLUMNS, "floor_visible"]


def _rows_of(set_id: int, *conditions: ColumnElement[bool]) -> Any:
    persons = Person.__table__.c
    copied = (persons[name] for name in COPIED_COLUMNS)
    return select(
        literal(set_id), persons.id, persons.name_key, *copied, persons.floor_visible
    ).where(*conditions)


def mark_written(session: Session) -> None:
    """Say this transaction wrote records outside the ORM (refreshed before it commits)."""
    session.info[_WROTE] = True


@event.listens_for(Session, "before_flush")
def _note_record_writes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _RECORD_TYPES):
            session.info[_WROTE] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _note_record_statements(state: ORMExecuteState) -> None:
    # An INSERT, UPDATE or DELETE statement run through the session on a record table.
    if state.is_select or not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, _RECORD_TYPES):
        state.session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _refresh_before_commit(session: Session) -> None:
    if session.info.get(_WROTE):
        refresh(session)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)

"""Build and keep visibility sets (see ``access.models``); find a policy's set for a search.

Every set is computed with ``access.filters.person_visible``, the predicate every read uses,
so a set holds exactly the persons a probe would pass. The database triggers remove and mark;
this module recomputes: before a transaction that wrote records commits (``refresh`` through
the session hook below), and from the governance tick for anything a writer left pending.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, event, exists, func, literal, select, text
from sqlalchemy.orm import Session, UOWTransaction

from openpars.access.filters import person_visible
from openpars.access.models import VisibilityPending, VisibilitySet, VisiblePerson
from openpars.access.policy import ReadPolicy
from openpars.prepared import param, prepared
from openpars.records.enums import ArrestState, Grade, InvolvementRole
from openpars.records.models import Arrest, Charge, Involvement, Person

log = logging.getLogger(__name__)

# session.info key: this transaction wrote records, so pending persons may wait for it.
_WROTE = "openpars.visibility.wrote"
# session.info key: set ids already looked up in this transaction, by row key.
_SETS = "openpars.visibility.sets"
_RECORD_TYPES = (Person, Involvement, Arrest, Charge)
_PENDING = cast(Table, VisibilityPending.__table__)
_VISIBLE = cast(Table, VisiblePerson.__table__)
_SETS_T = cast(Table, VisibilitySet.__table__)
# Persons recomputed per statement.
_CHUNK = 500


def spec_of(policy: ReadPolicy) -> dict[str, Any]:
    """The row filter of a policy as plain data (what a set is keyed by and rebuilt from)."""

    def values(items: frozenset[Any] | None) -> list[str] | None:
        return None if items is None else sorted(item.value for item in items)

    return {
        "roles": values(policy.roles),
        "include_sealed": policy.include_sealed,
        "exclude_juveniles": policy.exclude_juveniles,
        "arrest_states": values(policy.arrest_states),
        "grades": values(policy.grades),
    }


def row_key(policy: ReadPolicy) -> str:
    """The canonical text of a policy's row filter."""
    return json.dumps(spec_of(policy), sort_keys=True, separators=(",", ":"))


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


def set_for(session: Session, policy: ReadPolicy) -> int | None:
    """The id of the set kept for this policy's row filter, or None (search with probes).

    Looked up once per transaction. Persons this transaction changed are recomputed first.
    """
    if not policy.external:
        return None
    key = row_key(policy)
    known: dict[str, int | None] = session.info.setdefault(_SETS, {})
    if key in known:
        return known[key]
    if session.info.get(_WROTE):
        refresh(session)
    stmt = prepared(session, ("visibility_set",), _set_stmt)
    found = stmt.scalar(session, {"row_key": key})
    known[key] = found
    return found  # type: ignore[no-any-return]


def _set_stmt() -> Any:
    t = VisibilitySet.__table__.c
    return select(t.id).where(t.row_key == param("row_key", t.row_key))


def visible_in_set(person_id: ColumnElement[int]) -> ColumnElement[bool]:
    """The person is in the set bound as ``vis_set`` (the search's visibility predicate)."""
    v = VisiblePerson.__table__.c
    return exists(select(v.person_id).where(v.person_id == person_id, v.set_id == _set_param()))


def _set_param() -> Any:
    return param("vis_set", VisiblePerson.__table__.c.set_id)


def ensure_set(session: Session, policy: ReadPolicy) -> int:
    """The set for this policy's row filter, built now (every visible person) if missing.

    On PostgreSQL the build holds off record writers until it commits (SHARE locks on the
    tables visibility depends on): a writer's triggers only see sets already committed, so a
    change made during the build could otherwise leave it stale.
    """
    key = row_key(policy)
    existing = session.scalar(select(VisibilitySet.id).where(VisibilitySet.row_key == key))
    if existing is not None:
        return int(existing)
    _lock_writers(session)
    refresh(session)
    set_id = session.scalar(
        _SETS_T.insert().values(row_key=key, spec=spec_of(policy)).returning(_SETS_T.c.id)
    )
    assert set_id is not None
    session.execute(
        _VISIBLE.insert().from_select(
            ["set_id", "person_id", "name_key"],
            select(literal(set_id), Person.id, Person.name_key).where(person_visible(policy)),
        )
    )
    session.info.pop(_SETS, None)
    count = session.scalar(select(func.count()).where(VisiblePerson.set_id == set_id))
    log.info("visibility set %s built for %s: %s persons", set_id, key, count)
    return int(set_id)


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
            session.execute(
                _VISIBLE.insert().from_select(
                    ["set_id", "person_id", "name_key"],
                    select(literal(set_id), Person.id, Person.name_key).where(
                        Person.id.in_(chunk), person_visible(policy_of(spec))
                    ),
                )
            )
    return len(pending)


def mark_written(session: Session) -> None:
    """Say this transaction wrote records outside the ORM (refreshed before it commits)."""
    session.info[_WROTE] = True


@event.listens_for(Session, "before_flush")
def _note_record_writes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _RECORD_TYPES):
            session.info[_WROTE] = True
            return


@event.listens_for(Session, "before_commit")
def _refresh_before_commit(session: Session) -> None:
    if session.info.get(_WROTE):
        refresh(session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_SETS, None)
    session.info.pop(_WROTE, None)

"""Which entries a request names: only those whose transaction committed, in commit order."""

from __future__ import annotations

import pytest

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.recorded import collected, collecting
from openpars.audit.service import append, append_many
from openpars.db import Database


def event(n: int) -> AuditEvent:
    return AuditEvent(kind=AuditKind.READ, action="arrest.read", params={"n": n})


def test_committed_entries_are_collected_in_commit_order(db: Database) -> None:
    with collecting() as ids:
        with db.session() as session:
            first = append(session, event(1)).id
            batch = [a.id for a in append_many(session, [event(2), event(3)])]
        with db.session() as session:
            last = append(session, event(4)).id
        assert ids == [first, *batch, last]
        assert collected() == ids
    assert collected() == []


def _fail_after_append(db: Database) -> None:
    with db.session() as session:
        append(session, event(1))
        raise RuntimeError("the request failed after its entry was written")


def test_rolled_back_entries_are_not_named(db: Database) -> None:
    with collecting() as ids:
        with pytest.raises(RuntimeError):
            _fail_after_append(db)
        with db.session() as session:
            kept = append(session, event(2)).id
    assert ids == [kept]


def test_a_rolled_back_savepoint_drops_only_its_own_entries(db: Database) -> None:
    with collecting() as ids, db.session() as session:
        outer = append(session, event(1)).id
        released = session.begin_nested()
        inner = append(session, event(2)).id
        released.commit()
        assert collected() == []  # released, but durable only when the transaction commits
        dropped = session.begin_nested()
        append(session, event(3))
        dropped.rollback()
        # A later rollback of an unrelated savepoint keeps what was released before it.
        empty = session.begin_nested()
        empty.rollback()
    assert ids == [outer, inner]


def test_commits_outside_a_request_are_not_collected(db: Database) -> None:
    with db.session() as session:
        append(session, event(1))
    with db.session() as session:
        session.begin_nested().rollback()  # nothing pending: nothing to drop
    assert collected() == []


def test_a_commit_without_entries_names_nothing(db: Database) -> None:
    with collecting() as ids, db.session():
        pass
    assert ids == []


def test_a_released_savepoint_rolled_back_with_its_transaction_names_nothing(
    db: Database,
) -> None:
    with collecting() as ids, pytest.raises(RuntimeError):
        _release_then_fail(db)
    assert ids == []


def _release_then_fail(db: Database) -> None:
    with db.session() as session:
        savepoint = session.begin_nested()
        append(session, event(1))
        savepoint.commit()
        raise RuntimeError("the request failed after the savepoint was released")

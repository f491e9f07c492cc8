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
        session.rollback()  # nothing pending: nothing to drop
    assert collected() == []

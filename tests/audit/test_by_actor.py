"""Issue 12: entries by user or agency, exact whether or not an entry is integrated.

An append writes no index of its own: the entry's (user, at) and (agency, at) are copied by the
integrator into audit_user_entries / audit_agency_entries with the batch's leaves. A reader of
those tables alone would miss every entry appended since the last integration: a user's own
entries listing would hide a fresh read, a detector would not count it. `audit.by_actor` reads
the index and the not-integrated tail; these tests look at every step of an integration.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from openpars.audit import by_actor, log, receipts
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.models import AuditAgencyEntry, AuditEntry, AuditUserEntry
from openpars.audit.service import append
from openpars.db import Database, UTCDateTime, utcnow
from tests.factories import World


def read(db: Database, world: World, user: str) -> int:
    """One read by ``user`` (and so by their agency), committed in its own transaction."""
    principal = world.principals[user]
    with db.session() as session:
        event = AuditEvent(
            kind=AuditKind.READ,
            action="arrest.read",
            user_id=principal.user_id,
            agency_id=principal.agency_id,
        )
        return append(session, event).id


def system(db: Database) -> int:
    """An entry of no user and no agency."""
    with db.session() as session:
        return append(session, AuditEvent(kind=AuditKind.CONFIG, action="x")).id


def integrate(db: Database, limit: int = log.INTEGRATE_BATCH) -> int:
    with db.session() as session:
        return log.integrate(session, limit=limit)


def by(db: Database, column: by_actor.Actor, keys: list[int], **bounds: object) -> list[int]:
    """The ids by_actor gives, sorted, duplicates kept (there must be none)."""
    with db.session() as session:
        dialect = session.get_bind().dialect.name
        found = by_actor.entries_by(dialect, column, keys, **bounds)  # type: ignore[arg-type]
        return sorted(int(i) for i in session.scalars(found))


def by_sql(
    db: Database, column: by_actor.Actor, keys: list[int], lo: object, hi: object
) -> list[int]:
    with db.session() as session:
        dialect = session.get_bind().dialect.name
        listed = "(" + ", ".join(str(int(k)) for k in keys) + ")"
        statement = by_actor.entries_by_sql(dialect, column, listed, "lo", "hi")
        bound = text(statement).bindparams(
            bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime())
        )
        rows = session.execute(bound, {"lo": lo, "hi": hi})
        return sorted(int(r[0]) for r in rows)


def test_every_entry_is_found_by_user_and_agency_at_every_step_of_a_batched_integration(
    db: Database, world: World
) -> None:
    integrate(db)
    users = ["fbi", "court", "fbi", "clerk", "fbi", "court"]
    before = utcnow() - timedelta(seconds=1)
    ids = [read(db, world, u) for u in users]
    ids.insert(2, system(db))
    after = utcnow() + timedelta(seconds=1)
    users.insert(2, "")
    fbi, court = world.users["fbi"], world.users["court"]
    mine = [i for i, u in zip(ids, users, strict=True) if u == "fbi"]
    court_agency = world.principals["court"].agency_id
    assert court_agency is not None
    theirs = [
        i
        for i, u in zip(ids, users, strict=True)
        if u and world.principals[u].agency_id == court_agency
    ]
    assert len(theirs) == 3 and len(mine) == 3
    steps = 0
    while True:
        assert by(db, "user_id", [fbi]) == mine
        assert by(db, "user_id", [fbi], start=before, end=after) == mine
        assert by(db, "user_id", [fbi, court]) == sorted(
            i for i, u in zip(ids, users, strict=True) if u in ("fbi", "court")
        )
        assert by(db, "agency_id", [court_agency], start=before, end=after) == theirs
        assert by_sql(db, "agency_id", [court_agency], before, after) == theirs
        assert by_sql(db, "user_id", [fbi], before, after) == mine
        # Outside the window, and an instant bound that excludes: nothing.
        assert by(db, "user_id", [fbi], start=after) == []
        assert by(db, "user_id", [fbi], end=before) == []
        assert by_sql(db, "user_id", [fbi], after, after + timedelta(days=1)) == []
        steps += 1
        if integrate(db, limit=2) == 0:
            break
    assert steps == 5  # 7 entries in batches of 2: every mixture of index and tail was seen


def test_the_index_holds_each_entrys_user_agency_and_instant_and_nothing_of_system_entries(
    db: Database, world: World
) -> None:
    integrate(db)
    entry = read(db, world, "ice")
    none = system(db)
    with db.session() as session:
        assert (
            session.scalar(select(AuditUserEntry).where(AuditUserEntry.entry_id == entry)) is None
        )
    integrate(db)
    with db.session() as session:
        written = session.get(AuditEntry, entry)
        assert written is not None
        users = session.execute(
            select(AuditUserEntry.user_id, AuditUserEntry.at).where(
                AuditUserEntry.entry_id == entry
            )
        ).all()
        agencies = session.execute(
            select(AuditAgencyEntry.agency_id, AuditAgencyEntry.at).where(
                AuditAgencyEntry.entry_id == entry
            )
        ).all()
        assert users == [(written.user_id, written.at)]
        assert agencies == [(written.agency_id, written.at)]
        for table in (AuditUserEntry, AuditAgencyEntry):
            assert session.scalar(select(table).where(table.entry_id == none)) is None


def test_a_users_own_entries_include_the_one_appended_a_moment_ago(
    db: Database, world: World
) -> None:
    """The caller's listing of their own entries must not hide a read until the integrator
    runs: the newest entry is on the first page at once, and stays there after integration."""
    fbi = world.principals["fbi"]
    integrate(db)
    older = read(db, world, "fbi")
    integrate(db)
    fresh = read(db, world, "fbi")
    read(db, world, "ice")
    for step in ("before", "after"):
        with db.session() as session:
            page = receipts.own_entries(session, principal=fbi, limit=1)
            assert [e.id for e in page.entries] == [fresh], step
            rest = receipts.own_entries(
                session, principal=fbi, limit=5, before_id=page.next_before_id
            )
            assert [e.id for e in rest.entries] == [older], step
        integrate(db)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_user_entries SET user_id = user_id + 1",
        "DELETE FROM audit_user_entries",
        "UPDATE audit_agency_entries SET entry_id = entry_id",
        "DELETE FROM audit_agency_entries",
    ],
)
def test_the_index_by_user_and_agency_is_append_only(
    db: Database, world: World, statement: str
) -> None:
    read(db, world, "fbi")
    integrate(db)
    with db.session() as session:
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        savepoint.rollback()


def test_an_empty_batch_indexes_nothing(db: Database, world: World) -> None:
    read(db, world, "ice")
    with db.session() as s:
        before = [
            s.scalar(select(func.count()).select_from(m))
            for m in (AuditUserEntry, AuditAgencyEntry)
        ]
        by_actor.index_actors(s, [])
        repo.index_subjects(s, [])
        after = [
            s.scalar(select(func.count()).select_from(m))
            for m in (AuditUserEntry, AuditAgencyEntry)
        ]
    assert after == before

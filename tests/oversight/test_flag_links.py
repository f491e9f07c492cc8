"""A flag's links to its audit entries: the references the foreign keys checked, checked per
statement on PostgreSQL (no row lock on the audit entries), refused as before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import Database
from openpars.oversight.flags import FlagDraft, record_flags
from tests.conftest import BACKEND
from tests.factories import World

AT = datetime(2025, 7, 1, tzinfo=UTC)


def _entries(db: Database, n: int) -> list[int]:
    with db.session() as s:
        ids = [
            append(s, AuditEvent(kind=AuditKind.READ, action="test.read", params={"n": i})).id
            for i in range(n)
        ]
        s.commit()
    return ids


def _draft(key: str, entries: tuple[int, ...]) -> FlagDraft:
    return FlagDraft(
        detector="test_links",
        dedupe_key=key,
        rule="a test finding",
        threshold=None,
        subject_user_id=None,
        subject_agency_id=None,
        subject_agreement_id=None,
        entry_ids=entries,
        raised_at=AT,
    )


def _count(db: Database, table: str) -> int:
    with db.session() as s:
        return int(s.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_a_link_to_no_such_entry_or_flag_is_refused_with_its_whole_statement(
    db: Database, world: World
) -> None:
    entries = _entries(db, 4)
    missing = max(entries) + 1000
    # One good link among many, one bad: the statement (every link of every flag) is refused.
    with pytest.raises(DBAPIError, match="no such flag or audit entry"), db.session() as s:
        record_flags(s, [_draft("a", (entries[0], entries[1])), _draft("b", (missing,))])
    assert _count(db, "oversight_flag_entries") == 0
    with db.session() as s:
        (flag,) = record_flags(s, [_draft("c", tuple(entries[:3]))])
        s.commit()
    assert _count(db, "oversight_flag_entries") == 3
    for row in ((flag + 1000, entries[0]), (flag, missing)):
        with pytest.raises(DBAPIError, match="no such flag or audit entry"), db.session() as s:
            s.execute(
                text("INSERT INTO oversight_flag_entries (flag_id, entry_id) VALUES (:f, :e)"),
                {"f": row[0], "e": row[1]},
            )
    # Two rows in one statement, the second bad: neither is written.
    values = ", ".join(f"({flag}, {e})" for e in (entries[3], missing))
    with pytest.raises(DBAPIError, match="no such flag or audit entry"), db.session() as s:
        s.execute(text(f"INSERT INTO oversight_flag_entries (flag_id, entry_id) VALUES {values}"))
    assert _count(db, "oversight_flag_entries") == 3
    # A flag with links is not deleted; its links may go first, then the flag.
    with pytest.raises(DBAPIError, match="flag with linked entries"), db.session() as s:
        s.execute(text("DELETE FROM oversight_flags WHERE id = :f"), {"f": flag})
    with db.session() as s:
        s.execute(text("DELETE FROM oversight_flag_entries WHERE flag_id = :f"), {"f": flag})
        s.execute(text("DELETE FROM oversight_flags WHERE id = :f"), {"f": flag})
        s.commit()
    assert _count(db, "oversight_flags") == 0


@pytest.mark.skipif(BACKEND != "postgresql", reason="row locks: PostgreSQL")
def test_linking_entries_does_not_lock_them(fresh_db: Database) -> None:
    """A foreign key share-locks every entry it checks until the transaction ends (a day's
    flags link ~20,000); the statement's check reads them without a lock: another transaction
    can lock a linked entry meanwhile."""
    db = fresh_db
    entries = _entries(db, 2)
    with db.session() as s:
        record_flags(s, [_draft("d", tuple(entries))])
        other = create_engine(db.bind.engine.url)
        try:
            with other.connect() as c:
                c.execute(text("SET lock_timeout = '1s'"))
                locked = c.execute(
                    text("SELECT id FROM audit_entries WHERE id = :e FOR UPDATE NOWAIT"),
                    {"e": entries[0]},
                ).scalar_one()
                assert locked == entries[0]
                c.rollback()
        finally:
            other.dispose()
        s.rollback()

"""The database's guard on audit_entries: crypto-shredding's UPDATE is the only one it takes.

An entry's salt and content are on its own row, and shredding sets both to NULL in place. The
attacker here runs SQL against the log (one administrator with a console, or the operator):
altering a content, restoring one, erasing one that no shredding entry names, or riding a real
shredding to change anything else. Each attempt is refused by the database itself, on both
engines; the one that passes is the shredding path's (and, as docs/audit-export.md says, an
owner who drops the guard is caught by the verifier: tests/audit/test_shred_attacks.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from openpars.audit import log
from openpars.audit import shred as shredding
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import Database
from tests.audit import records
from tests.audit.test_log import COURT, add_entries
from tests.audit.test_shred_attacks import verify_export

ORDER = "CP-51-MD-404-2026"
# The guard's refusal (SQLite's trigger, PostgreSQL's statement trigger) or, for a row left
# half shredded, the table's check constraint.
REFUSED = "append-only|shredded_whole"


def refused(session: Session, statement: str, **params: Any) -> None:
    """The statement fails in the database; nothing it did is kept."""
    savepoint = session.begin_nested()
    with pytest.raises(DBAPIError, match=REFUSED):
        session.execute(text(statement), params)
    savepoint.rollback()


def row(session: Session, entry_id: int) -> tuple[Any, ...]:
    """Every column of the entry as stored."""
    session.expire_all()
    found = session.get(AuditEntry, entry_id)
    assert found is not None
    return tuple(getattr(found, c.key) for c in AuditEntry.__table__.columns)


def forged_shredding(
    session: Session, *commitments: bytes, outcome: Outcome = Outcome.OK, order: str = ORDER
) -> int:
    """An ``audit.shred`` entry appended by hand (as someone with SQL or the service could),
    naming these commitments: what the guard looks for, and what the verifier checks."""
    event = AuditEvent(
        kind=AuditKind.WRITE,
        action="audit.shred",
        outcome=outcome,
        params={"order_reference": order, "commitments": [c.hex() for c in commitments]},
    )
    return append(session, event).id


def commitment(session: Session, entry_id: int) -> bytes:
    found = session.get(AuditEntry, entry_id)
    assert found is not None
    return found.commitment


def use_shredding_entry(session: Session, entry_id: int) -> None:
    """PostgreSQL's guard finds the shredding entry by a transaction-local setting, which any
    session may set (the guard checks the entry it names, not who set it)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT set_config('openpars.shredding_entry', :v, true)"), {"v": str(entry_id)}
        )


ERASE = "UPDATE audit_entries SET salt = NULL, content = NULL WHERE id = :i"


def test_content_cannot_be_altered_restored_or_erased_outside_a_shredding(db: Database) -> None:
    sealed = add_entries(db, 2, arrest_id=41)
    [kept] = add_entries(db, 1, arrest_id=42)
    with db.session() as session:
        records.arrest(session, 41, order=ORDER, person_ids=[1])
        records.arrest(session, 42, person_ids=[2])
    with db.session() as session:
        before = row(session, kept)
        # Altered in place: content, salt, or both, to other bytes or to themselves.
        refused(session, "UPDATE audit_entries SET content = :c WHERE id = :i", c=b"{}", i=kept)
        refused(session, "UPDATE audit_entries SET salt = :s WHERE id = :i", s=bytes(32), i=kept)
        refused(session, "UPDATE audit_entries SET content = content, salt = salt")
        # Erased with no shredding entry anywhere, one column or both, one row or all.
        refused(session, ERASE, i=kept)
        refused(session, "UPDATE audit_entries SET content = NULL WHERE id = :i", i=kept)
        refused(session, "UPDATE audit_entries SET salt = NULL WHERE id = :i", i=kept)
        refused(session, "UPDATE audit_entries SET salt = NULL, content = NULL")
        refused(session, "DELETE FROM audit_entries WHERE id = :i", i=kept)
        assert row(session, kept) == before
    with db.session() as session:
        assert log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=41) == sealed
    with db.session() as session:
        shredded = row(session, sealed[0])
        # A real shredding is the newest entry now, and does not name the kept entry.
        real = session.scalar(select(func.max(AuditEntry.id)))
        assert real is not None and row(session, real)[3] == "audit.shred"
        use_shredding_entry(session, real)
        refused(session, ERASE, i=kept)
        # Un-shredding: the salt and content put back (or anything put back).
        refused(
            session,
            "UPDATE audit_entries SET salt = :s, content = :c WHERE id = :i",
            s=bytes(32),
            c=b"{}",
            i=sealed[0],
        )
        refused(session, "UPDATE audit_entries SET content = :c WHERE id = :i", c=b"x", i=sealed[0])
        # Shredding a shredded entry again changes nothing the guard lets through either.
        refused(session, ERASE, i=sealed[0])
        assert row(session, sealed[0]) == shredded and row(session, kept) == before


def test_a_shredding_entry_must_name_the_row_be_newer_and_succeed(db: Database) -> None:
    [target, other] = add_entries(db, 2, arrest_id=43)
    with db.session() as session:
        named = commitment(session, target)
        # A refused shredding naming the row covers nothing.
        failed = forged_shredding(session, named, outcome=Outcome.REFUSED)
        use_shredding_entry(session, failed)
        refused(session, ERASE, i=target)
        # One naming another row's commitment covers nothing of this one.
        wrong = forged_shredding(session, commitment(session, other))
        use_shredding_entry(session, wrong)
        refused(session, ERASE, i=target)
    # A shredding covers only entries before it. Its content is fixed when it is appended, so
    # it can name a later entry only if that entry's commitment was chosen for it: written by
    # hand, as here.
    chosen = bytes([0x11]) * 32
    with db.session() as session:
        early = forged_shredding(session, chosen)
        later = session.execute(
            text(
                "INSERT INTO audit_entries (at, kind, action, outcome, commitment, salt, content) "
                "VALUES (:at, 'read', 'arrest.read', 'ok', :c, :s, :t) RETURNING id"
            ),
            {"at": "2026-12-06 00:00:00.000000", "c": chosen, "s": bytes(32), "t": b"{}"},
        ).scalar_one()
        assert later > early
        use_shredding_entry(session, early)
        refused(session, ERASE, i=later)
        assert row(session, target)[-1] is not None


def test_riding_a_shredding_to_change_anything_else_is_refused(db: Database) -> None:
    with db.session() as session:
        event = AuditEvent(
            kind=AuditKind.READ, action="arrest.read", person_ids=[7], arrest_ids=[44]
        )
        target, bystander = append(session, event).id, append(session, event).id
        shredding = forged_shredding(session, commitment(session, target))
        use_shredding_entry(session, shredding)
        before = row(session, target)
        for change in (
            "action = 'x'",
            "outcome = 'refused'",
            "person_ids = NULL",
            "arrest_ids = NULL",
            "kind = 'write'",
            "agreement_id = 5",
            "commitment = :z",
            # (on PostgreSQL the queue's foreign key may refuse this one first: also refused)
            "id = id + 1000000",
        ):
            statement = (
                f"UPDATE audit_entries SET salt = NULL, content = NULL, {change} WHERE id = :i"
            )
            params = {"i": target, "z": bytes(32)}
            savepoint = session.begin_nested()
            with pytest.raises(DBAPIError, match=f"{REFUSED}|foreign key constraint"):
                session.execute(text(statement), params)
            savepoint.rollback()
        # One statement over the named row and a row the shredding does not name: all refused.
        refused(
            session,
            "UPDATE audit_entries SET salt = NULL, content = NULL WHERE id IN (:a, :b)",
            a=target,
            b=bystander,
        )
        assert row(session, target) == before
        # The shredding's own statement, on the named row alone, is the one that passes.
        session.execute(text(ERASE), {"i": target})
        after = row(session, target)
        names = [c.key for c in AuditEntry.__table__.columns]
        assert {n for n, a, b in zip(names, before, after, strict=True) if a != b} == {
            "salt",
            "content",
        }
        assert after[names.index("salt")] is None and after[names.index("content")] is None


def test_a_large_shredding_is_recorded_in_parts_each_naming_what_it_erased(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part's entry is appended before its rows are erased (the guard checks the newest),
    together they name every entry, and the independent verifier accepts the log."""
    monkeypatch.setattr(shredding, "ENTRIES_PER_RECORD", 2)
    sealed = add_entries(db, 5, arrest_id=45)
    with db.session() as session:
        records.arrest(session, 45, order=ORDER, person_ids=[5])
    with db.session() as session:
        assert log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=45) == sealed
    with db.session() as session:
        parts = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "audit.shred").order_by(AuditEntry.id)
        ).all()
        named = [json.loads(p.content or b"")["params"] for p in parts]
        assert [p["entry_ids"] for p in named] == [sealed[0:2], sealed[2:4], sealed[4:]]
        assert [p["entries_shredded"] for p in named] == [2, 2, 1]
        assert all(p["order_reference"] == ORDER for p in named)
        assert all(row(session, e)[-1] is None for e in sealed)
    checked = verify_export(db, settings, tmp_path / "parts.txt")
    assert checked.returncode == 0, checked.stderr
    assert "5 shredded" in checked.stdout


def test_a_shredding_that_finds_nothing_is_still_recorded_and_erases_nothing(db: Database) -> None:
    [other] = add_entries(db, 1, arrest_id=47)
    with db.session() as session:
        records.arrest(session, 46, order=ORDER, person_ids=[6])
    with db.session() as session:
        assert log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=46) == []
    with db.session() as session:
        [part] = session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.shred"))
        params = json.loads(part.content or b"")["params"]
        assert (params["entries_shredded"], params["entry_ids"], params["commitments"]) == (
            0,
            [],
            [],
        )
        assert row(session, other)[-1] is not None

"""An operator with the database file: after shredding, no copy of the content is left in it.

SQLite only (PostgreSQL keeps a deleted row's bytes until its page is rewritten; documented in
docs/audit-export.md). Real files, real commits: the test reads the database and its WAL byte
by byte, as someone holding a copy of them would.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from openpars.audit import log
from openpars.audit import shred as shredding
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.db import Base, Database, make_engine
from tests.audit import records
from tests.audit.test_log import COURT
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="reads SQLite's own files")

MARKER = "Qzvxkwplumbrant"
KEPT = "Yxowqkeptfrobnic"
ORDER = "CP-51-MD-77-2026"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'site.db'}")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def _on_disk(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _write_then_shred(engine: Engine, path: Path, *, pad: int = 0) -> list[int]:
    """Three entries about a sealed arrest (``pad`` bytes more content each: past a page, the
    content spills into overflow pages) and one about another, then the shredding."""
    db = Database(engine)
    with db.session() as session:
        records.arrest(session, 41, order=ORDER, person_ids=[1])
        records.arrest(session, 42, person_ids=[2])
    for i in range(3):
        with db.session() as session:
            append(
                session,
                AuditEvent(
                    kind=AuditKind.READ,
                    action="arrest.read",
                    params={"searched": f"{MARKER}{i}", "pad": f"{MARKER}-" * (pad // 16)},
                    arrest_ids=[41],
                ),
            )
    with db.session() as session:
        append(
            session,
            AuditEvent(
                kind=AuditKind.READ, action="arrest.read", params={"kept": KEPT}, arrest_ids=[42]
            ),
        )
    assert _on_disk(path).count(MARKER.encode()) >= 3
    with db.session() as session:
        return log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=41)


def test_shredded_content_leaves_no_copy_in_the_file_or_its_wal(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "site.db"
    assert len(_write_then_shred(engine, path)) == 3
    # A reader that never holds a snapshot: the checkpoint after the commit emptied the WAL.
    assert MARKER.encode() not in _on_disk(path)
    assert not (tmp_path / "site.db-wal").exists() or (tmp_path / "site.db-wal").stat().st_size == 0
    # The entry that was not shredded is still there, on the same pages: the search finds it.
    assert KEPT.encode() in _on_disk(path)


def test_a_content_larger_than_a_page_leaves_no_copy_either(engine: Engine, tmp_path: Path) -> None:
    """Set to NULL in place, a content of several pages frees its overflow pages: zeroed too."""
    path = tmp_path / "site.db"
    assert len(_write_then_shred(engine, path, pad=20_000)) == 3
    assert MARKER.encode() not in _on_disk(path)
    assert KEPT.encode() in _on_disk(path)
    with Database(engine).session() as session:
        rows = session.execute(
            text("SELECT count(*) FROM audit_entries WHERE content IS NULL AND salt IS NULL")
        ).scalar_one()
    assert rows == 3


@pytest.mark.parametrize("pad", [0, 20_000])
def test_without_secure_delete_the_content_would_stay_in_the_file(
    engine: Engine, tmp_path: Path, pad: int
) -> None:
    """The control: the check above finds a leftover copy when there is one (the pragma off,
    as in upstream SQLite's default build)."""

    @event.listens_for(engine, "connect")
    def _upstream_default(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA secure_delete=OFF")  # type: ignore[attr-defined]

    engine.dispose()
    path = tmp_path / "site.db"
    assert len(_write_then_shred(engine, path, pad=pad)) == 3
    assert MARKER.encode() in _on_disk(path)


def test_a_locked_file_is_reported_not_waited_for(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holding the file exclusively: the checkpoint fails at once, with a
    warning naming the file, instead of holding the request for the busy timeout."""
    path = tmp_path / "site.db"
    engine.dispose()  # the pool's idle connections would keep the holder from its lock
    holder = sqlite3.connect(path, timeout=0)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with (
            caplog.at_level(logging.WARNING, logger=shredding.__name__),
            Database(engine).session() as session,
        ):
            shredding._empty_sqlite_wal(session)
    finally:
        holder.close()
    assert any(
        "checkpoint of" in r.getMessage()
        and "failed" in r.getMessage()
        and str(path) in r.getMessage()
        for r in caplog.records
    )


def test_a_shredding_rolled_back_leaves_nothing_for_the_next_commit(
    engine: Engine, tmp_path: Path
) -> None:
    """The checkpoint belongs to the shredding's transaction: when it rolls back, the same
    session's next commit does not empty the WAL on its behalf; a shredding committed later in
    that session still does."""
    db = Database(engine)
    with db.session() as session:
        records.arrest(session, 41, order=ORDER, person_ids=[1])
    with db.session() as session:
        append(session, AuditEvent(kind=AuditKind.READ, action="arrest.read", arrest_ids=[41]))
    wal = tmp_path / "site.db-wal"
    with db.session() as session:
        assert log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=41)
        session.rollback()
        append(session, AuditEvent(kind=AuditKind.READ, action="arrest.read", arrest_ids=[41]))
        session.commit()
        assert wal.stat().st_size > 0
        # The content was never shredded: it is still there to read.
        assert log.shred(session, actor=COURT, order_reference=ORDER, arrest_id=41)
        session.commit()
    assert wal.stat().st_size == 0

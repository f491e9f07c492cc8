"""SQLite connections: every unit of work holds the write lock from its first statement (BEGIN
IMMEDIATE, sent on the driver's connection) and a lock it cannot get is SQLAlchemy's error, as
before; durability and checkpoint settings as ``openpars.db`` sets them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, exc, text

from openpars.db import SQLITE_WAL_AUTOCHECKPOINT, Database, make_engine
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single write lock")


def _database(path: Path, *, busy_ms: int = 30_000) -> Database:
    engine = make_engine(f"sqlite:///{path}")

    def wait_briefly(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={busy_ms}")

    event.listen(engine, "connect", wait_briefly)
    return Database(engine)


def test_a_read_only_unit_holds_the_write_lock_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    first, second = _database(path), _database(path, busy_ms=0)
    with first.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER)"))
    try:
        with first.session() as reading:
            assert reading.execute(text("SELECT count(*) FROM t")).scalar() == 0
            # The reader began IMMEDIATE: another writer is refused at once, not after the
            # reader would have upgraded its lock.
            with pytest.raises(exc.OperationalError, match="database is locked"):  # noqa: SIM117
                with second.session() as writing:
                    writing.execute(text("INSERT INTO t VALUES (1)"))
        # Once the reader's unit ended, the writer gets the lock.
        with second.session() as writing:
            writing.execute(text("INSERT INTO t VALUES (1)"))
        with first.session() as reading:
            assert reading.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        first.dispose()
        second.dispose()


def test_a_refused_begin_is_sqlalchemys_error_and_the_connection_stays_usable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock.db"
    first, second = _database(path), _database(path, busy_ms=0)
    with first.session() as s:
        s.execute(text("CREATE TABLE t (v INTEGER)"))
    try:
        with first.session() as holding:
            holding.execute(text("INSERT INTO t VALUES (1)"))
            with pytest.raises(exc.OperationalError) as refused:  # noqa: SIM117
                with second.session() as s:
                    s.connection()
            assert refused.value.statement == "BEGIN IMMEDIATE"
            assert not refused.value.connection_invalidated
        with second.session() as s:
            assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        first.dispose()
        second.dispose()


def test_commits_are_durable_and_checkpoint_every_ten_thousand_pages(tmp_path: Path) -> None:
    db = _database(tmp_path / "settings.db")
    try:
        with db.session() as s:
            pragma = s.connection().connection.driver_connection.execute  # type: ignore[union-attr]
            assert pragma("PRAGMA journal_mode").fetchone() == ("wal",)
            assert pragma("PRAGMA synchronous").fetchone() == (2,)  # FULL
            assert pragma("PRAGMA wal_autocheckpoint").fetchone() == (10_000,)
        assert SQLITE_WAL_AUTOCHECKPOINT == 10_000
    finally:
        db.dispose()

"""Migrations: `upgrade head` on an empty database matches the models exactly (no drift)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from openpars.db import make_engine
from openpars.migrate import drift, upgrade
from tests.conftest import new_database_url


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url, drop = new_database_url(tmp_path)
    yield url
    drop()  # type: ignore[operator]


def test_upgrade_head_has_no_drift(empty_url: str) -> None:
    upgrade(empty_url)
    assert drift(empty_url) == []


def test_migrated_audit_tables_refuse_update_and_delete(empty_url: str) -> None:
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_entries (id, at, kind, action, outcome, commitment) "
                    "VALUES (1, CURRENT_TIMESTAMP, 'read', 'a', 'ok', :c)"
                ),
                {"c": b"\x00" * 32},
            )
        for statement in ("UPDATE audit_entries SET action = 'x'", "DELETE FROM audit_entries"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT action FROM audit_entries")).scalar_one() == "a"
    finally:
        engine.dispose()

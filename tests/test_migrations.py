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


def _triggers_and_policies(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
                return {r[0] for r in rows}
            triggers = conn.execute(
                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            ).scalars()
            policies = conn.execute(text("SELECT policyname FROM pg_policies")).scalars()
            return set(triggers) | {f"policy:{p}" for p in policies}
    finally:
        engine.dispose()


def test_migration_installs_the_same_triggers_and_policies_as_the_models(
    empty_url: str, database_url: str
) -> None:
    upgrade(empty_url)
    migrated = _triggers_and_policies(empty_url)
    assert migrated, "the migration installed no triggers at all"
    assert migrated == _triggers_and_policies(database_url)

"""Fixtures for the command line: a real database file (or PostgreSQL database) per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Base, Database, make_engine
from openpars.web.app import create_app
from tests.conftest import new_database_url


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the configured backend (no schema)."""
    url, drop = new_database_url(tmp_path)
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture
def db_url(empty_url: str) -> str:
    """A new database with the schema created from the models."""
    engine = make_engine(empty_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return empty_url


@pytest.fixture
def runner() -> CliRunner:
    """Invokes the real root command in-process."""
    return CliRunner()


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    """The real app over the same database the commands write to."""
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as client:
        yield client
    app.state.db.bind.dispose()


def audit_count(url: str) -> int:
    """How many audit entries the database holds."""
    database = Database(make_engine(url))
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    finally:
        database.bind.engine.dispose()


def last_entry(url: str) -> tuple[str, str, str | None, dict[str, object]]:
    """The newest audit entry's (kind, action, error code, params), read from its content."""
    database = Database(make_engine(url))
    try:
        with database.session() as session:
            entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
            assert entry is not None
            content = session.get(AuditEntry, entry.id)
            assert content is not None
            document = json.loads(content.content)
            return entry.kind.value, entry.action, document.get("error_code"), document["params"]
    finally:
        database.bind.engine.dispose()

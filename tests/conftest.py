"""Test fixtures: one database per backend per session; each test in a rolled-back transaction.

The backend comes from OPENPARS_TEST_BACKEND (``sqlite`` by default, or ``postgresql``); CI
runs the whole suite once per backend. PostgreSQL tests create their own database on
OPENPARS_TEST_PG_URL (default the local trust-auth server) and drop it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import Engine

from openpars.config import Settings
from openpars.db import Base, Database, make_engine, make_unpooled_engine
from openpars.models import load_all_models
from openpars.web.app import create_app
from tests.factories import World, build_world

BACKEND = os.environ.get("OPENPARS_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "OPENPARS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

load_all_models()

# Property tests draw the same examples on every run, so a clean clone passes or fails alike
# and a CI failure reproduces at once. HYPOTHESIS_PROFILE=explore searches new examples (run it
# by hand when changing the policy, quorum or log code); a failure it finds prints the blob
# that replays it with @reproduce_failure.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def new_database_url(tmp_dir: Path) -> tuple[str, object]:
    """Create an empty database for the configured backend; return its URL and a dropper."""
    if BACKEND == "sqlite":
        return f"sqlite:///{tmp_dir / f'openpars-{uuid.uuid4().hex[:8]}.db'}", lambda: None
    name = f"openpars_test_{uuid.uuid4().hex[:12]}"
    admin = make_unpooled_engine(PG_ADMIN_URL)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # Roles are cluster-wide: the schema made this database's own external role
            # (access/rls.py), which no other database uses and which holds nothing any more.
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One empty database for the whole session, with the schema created from the models."""
    url, drop = new_database_url(tmp_path_factory.mktemp("db"))
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The session's engine."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Database]:
    """A Database joined to an outer transaction that is rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield Database(connection)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[Database]:
    """A brand-new database whose commits are real (for concurrency and crash tests)."""
    url, drop = new_database_url(tmp_path)
    eng = make_engine(url)
    Base.metadata.create_all(eng)
    yield Database(eng)
    eng.dispose()
    drop()  # type: ignore[operator]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for the app under test."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")


@pytest.fixture
def world(db: Database) -> World:
    """Agencies, users and tokens of a typical site."""
    with db.session() as session:
        return build_world(session)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The real app over the test's database."""
    app = create_app(settings, database=db)
    with TestClient(app) as test_client:
        yield test_client

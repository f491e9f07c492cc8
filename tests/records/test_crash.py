"""A crash in the middle of intake leaves no partial arrest (real commits, real failure)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event

from openpars.config import Settings
from openpars.db import Database
from openpars.records import service
from openpars.records.schemas import ArrestCreate, ArrestCreated
from openpars.web.app import create_app
from tests.factories import World, build_world
from tests.records.factories import arrest_payload
from tests.records.helpers import row_counts, submit


class Boom(RuntimeError):
    """The injected failure."""


@pytest.fixture
def exploding_charges(fresh_db: Database) -> Iterator[dict[str, int]]:
    """Make every INSERT into charges fail, after the persons and the arrest are written.

    The listener sits on the engine, below the ORM, so it fires however intake writes rows.
    """
    seen: dict[str, int] = {}
    engine = fresh_db.bind

    def explode(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO CHARGES"):
            return
        # Prove the failure comes mid-way: rows of this transaction are already in the tables.
        for table in ("persons", "arrests", "involvements"):
            seen[table] = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
        raise Boom("disk on fire")

    event.listen(engine, "before_cursor_execute", explode)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", explode)


def _world(fresh_db: Database) -> World:
    with fresh_db.session() as session:
        return build_world(session)


def test_crash_mid_request_leaves_nothing(
    fresh_db: Database, settings: Settings, exploding_charges: dict[str, int]
) -> None:
    world = _world(fresh_db)
    app = create_app(settings, database=fresh_db)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = submit(client, world, arrest_payload())
    assert response.status_code == 500
    assert exploding_charges == {"persons": 3, "arrests": 1, "involvements": 3}
    counts = row_counts(fresh_db)
    assert counts["persons"] == counts["arrests"] == counts["involvements"] == 0
    assert counts["record_versions"] == counts["charges"] == 0


def test_crash_in_service_rolls_back_the_unit(
    fresh_db: Database, exploding_charges: dict[str, int]
) -> None:
    world = _world(fresh_db)
    data = ArrestCreate.model_validate(arrest_payload())
    with pytest.raises(Boom), fresh_db.session() as session:
        service.submit_arrest(session, actor=world.principals["intake"], data=data)
    assert exploding_charges["arrests"] == 1
    counts = row_counts(fresh_db)
    assert counts["persons"] == counts["arrests"] == counts["involvements"] == 0


def test_without_the_failure_the_same_request_commits(
    fresh_db: Database, settings: Settings
) -> None:
    # The control: the crash test would pass vacuously if nothing was ever written.
    world = _world(fresh_db)
    app = create_app(settings, database=fresh_db)
    with TestClient(app) as client:
        assert submit(client, world, arrest_payload()).status_code == 201
    counts = row_counts(fresh_db)
    assert counts["persons"] == 3
    assert counts["arrests"] == 1
    assert counts["charges"] == 3


def test_concurrent_resends_make_one_arrest(fresh_db: Database) -> None:
    """Two booking-system retries racing: one arrest, the other request replays it."""
    world = _world(fresh_db)
    data = ArrestCreate.model_validate(arrest_payload())
    barrier = threading.Barrier(2)
    results: list[ArrestCreated] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            with fresh_db.session() as session:
                results.append(
                    service.submit_arrest(session, actor=world.principals["intake"], data=data)
                )
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].arrest_id == results[1].arrest_id
    counts = row_counts(fresh_db)
    assert counts["arrests"] == 1
    assert counts["persons"] == 3

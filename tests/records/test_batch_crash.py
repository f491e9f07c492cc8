"""A crash in the middle of a batch leaves nothing of the batch (real commits, real failure)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, event

from openpars.db import Database
from openpars.records.batch import submit_arrests
from openpars.records.schemas import ArrestCreate
from tests.factories import World, build_world
from tests.records.factories import arrest_payload, person_payload
from tests.records.helpers import last_audit_id, row_counts


class Boom(RuntimeError):
    """The injected failure."""


@pytest.fixture
def second_charges_insert_fails(fresh_db: Database) -> Iterator[dict[str, int]]:
    """Let the first INSERT into charges through, fail the second (at the engine, below the
    ORM), recording how many arrests the transaction had written by then."""
    seen: dict[str, int] = {"charge_inserts": 0}

    def explode(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO CHARGES"):
            return
        seen["charge_inserts"] += 1
        if seen["charge_inserts"] == 2:
            seen["arrests"] = conn.exec_driver_sql("SELECT count(*) FROM arrests").scalar_one()
            raise Boom("disk on fire")

    event.listen(fresh_db.bind, "before_cursor_execute", explode)
    try:
        yield seen
    finally:
        event.remove(fresh_db.bind, "before_cursor_execute", explode)


def test_crash_mid_batch_leaves_nothing_of_it(
    fresh_db: Database, second_charges_insert_fails: dict[str, int]
) -> None:
    with fresh_db.session() as session:
        world: World = build_world(session)
    first = arrest_payload()
    # The second arrest names the first one's arrestee by SID, so the first is written before
    # the second is resolved: the failure comes after a whole arrest of the batch is in.
    linked = arrest_payload()
    linked["involvements"][0]["person"] = person_payload(
        sid=first["involvements"][0]["person"]["sid"]
    )
    items = [ArrestCreate.model_validate(p) for p in (first, linked, arrest_payload())]
    counts, mark = row_counts(fresh_db), last_audit_id(fresh_db)
    with pytest.raises(Boom), fresh_db.session() as session:
        submit_arrests(session, actor=world.principals["intake"], items=items)
    assert second_charges_insert_fails["arrests"] == 3  # all three were in when it failed
    assert row_counts(fresh_db) == counts
    assert last_audit_id(fresh_db) == mark


def test_a_clashing_wave_is_redone_one_arrest_at_a_time(fresh_db: Database) -> None:
    """A wave that hits a unique constraint (a concurrent twin on PostgreSQL; injected here)
    is rolled back to its savepoint and each arrest written in a savepoint of its own."""
    with fresh_db.session() as session:
        world: World = build_world(session)
    failures = {"left": 1}

    def clash(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ARRESTS") and failures["left"]:
            failures["left"] -= 1
            raise conn.dialect.dbapi.IntegrityError("duplicate key (injected)")  # type: ignore[union-attr]

    items = [ArrestCreate.model_validate(arrest_payload()) for _ in range(3)]
    counts = row_counts(fresh_db)
    event.listen(fresh_db.bind, "before_cursor_execute", clash)
    try:
        with fresh_db.session() as session:
            results = submit_arrests(session, actor=world.principals["intake"], items=items)
    finally:
        event.remove(fresh_db.bind, "before_cursor_execute", clash)
    assert [type(r).__name__ for r in results] == ["ArrestCreated"] * 3
    after = row_counts(fresh_db)
    assert after["arrests"] == counts["arrests"] + 3
    assert after["persons"] == counts["persons"] + 9  # the rolled-back wave left none behind
    assert after["record_versions"] == counts["record_versions"] + 12


def test_two_racing_resends_of_a_batch_make_one_set_of_arrests(fresh_db: Database) -> None:
    """Two retries of one batch at once: one writes it, the other replays every arrest (on
    PostgreSQL through the clashing wave's per-arrest redo; on SQLite by waiting its turn)."""
    with fresh_db.session() as session:
        world: World = build_world(session)
    items = [ArrestCreate.model_validate(arrest_payload()) for _ in range(3)]
    barrier = threading.Barrier(2)
    answers: list[list[Any]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            with fresh_db.session() as session:
                answers.append(
                    submit_arrests(session, actor=world.principals["intake"], items=items)
                )
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    replayed = sorted([r.replayed for r in answer] for answer in answers)
    assert replayed == [[False] * 3, [True] * 3]
    assert [r.arrest_id for r in answers[0]] == [r.arrest_id for r in answers[1]]
    counts = row_counts(fresh_db)
    assert counts["arrests"] == 3 and counts["persons"] == 9

"""Identifiers stay one record's among those a writer sees, even when intakes race.

The database no longer makes SIDs, FBI numbers and OTNs unique (a sealed record's must answer
as unused: records.identifiers), so two concurrent intakes must not both find a number free.
On PostgreSQL they take one advisory lock first; SQLite holds its write lock from BEGIN.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from openpars.db import Database
from openpars.errors import Conflict
from openpars.records import service
from openpars.records.models import Arrest, Person
from openpars.records.schemas import ArrestCreate, ArrestCreated
from tests.factories import build_world
from tests.records.factories import arrest_payload, person_payload


def _race(fresh_db: Database, payloads: list[dict[str, Any]]) -> list[ArrestCreated | Exception]:
    """Submit the payloads at the same moment, each in its own transaction."""
    with fresh_db.session() as session:
        world = build_world(session)
    barrier = threading.Barrier(len(payloads))
    results: list[ArrestCreated | Exception] = []

    def sender(payload: dict[str, Any]) -> Callable[[], None]:
        def send() -> None:
            data = ArrestCreate.model_validate(payload)
            try:
                barrier.wait(timeout=10)
                with fresh_db.session() as session:
                    actor = world.principals["intake"]
                    results.append(service.submit_arrest(session, actor=actor, data=data))
            except Exception as exc:  # collected and checked in the test thread
                results.append(exc)

        return send

    threads = [threading.Thread(target=sender(p)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_racing_intakes_of_one_new_sid_make_one_person(fresh_db: Database) -> None:
    payloads = []
    for _ in range(2):
        payload = arrest_payload()
        payload["involvements"][0]["person"] = person_payload(offset=13, sid="555-55-55-5")
        payload["involvements"][0]["create_new_person"] = True
        payloads.append(payload)
    results = _race(fresh_db, payloads)
    assert all(isinstance(r, ArrestCreated) for r in results), results
    with fresh_db.session() as session:
        holders = session.scalar(
            select(func.count()).select_from(Person).where(Person.sid == "555-55-55-5")
        )
    assert holders == 1
    links = sorted(r.links[0].matched_on for r in results if isinstance(r, ArrestCreated))
    assert links == ["new", "sid"]


def test_racing_intakes_of_one_otn_make_one_arrest(fresh_db: Database) -> None:
    results = _race(fresh_db, [arrest_payload(otn="Q5555555-5") for _ in range(2)])
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1 and refused[0].field == "otn"
    with fresh_db.session() as session:
        holders = session.scalar(
            select(func.count()).select_from(Arrest).where(Arrest.otn == "Q5555555-5")
        )
    assert holders == 1

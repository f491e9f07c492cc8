"""Amendments and corrections keep every version, with who and why; history is internal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.db import Database
from openpars.errors import NotFound
from openpars.records import service
from openpars.records.enums import ChangeKind, VersionedEntity
from openpars.records.models import Involvement, Person
from openpars.records.schemas import PersonAmend
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import API, audit_since, last_audit_id, submit


def _patch(client: TestClient, world: World, path: str, body: dict[str, object], user: str) -> Any:
    return client.patch(f"{API}/{path}", json=body, headers=world.auth(user))


def test_arrest_amendments_keep_every_version(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload()
    arrest_id = submit(client, world, payload).json()["arrest_id"]
    mark = last_audit_id(db)
    first = _patch(
        client,
        world,
        f"arrests/{arrest_id}",
        {"reason": "officer gave the wrong corner", "location": "N Broad St & W Erie Ave"},
        "intake",
    )
    assert first.status_code == 200, first.json()
    assert first.json()["version"] == 2
    assert audit_since(db, mark) == [("write", "arrest.amend", "ok")]
    second = _patch(
        client,
        world,
        f"arrests/{arrest_id}",
        {
            "change": "correct",
            "reason": "typo in the officer's badge",
            "arresting_officer": "P/O X",
        },
        "charging",
    )
    assert second.json()["version"] == 3
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader"))
    assert history.status_code == 200
    versions = history.json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["change"] for v in versions] == ["create", "amend", "correct"]
    assert [v["changed_by_id"] for v in versions] == [
        world.users["intake"],
        world.users["intake"],
        world.users["charging"],
    ]
    assert versions[1]["reason"] == "officer gave the wrong corner"
    # Each snapshot is the whole record as of that version: earlier values are still there.
    assert versions[0]["snapshot"]["location"] == payload["location"]
    assert versions[1]["snapshot"]["location"] == "N Broad St & W Erie Ave"
    assert versions[1]["snapshot"]["arresting_officer"] == payload["arresting_officer"]
    assert versions[2]["snapshot"]["arresting_officer"] == "P/O X"
    assert versions[2]["snapshot"]["location"] == "N Broad St & W Erie Ave"
    assert versions[2]["snapshot"]["narrative"] == payload["narrative"]  # untouched field


def test_clearing_an_optional_field_is_a_change(
    client: TestClient, world: World, db: Database
) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    response = _patch(
        client,
        world,
        f"arrests/{arrest_id}",
        {"reason": "sealed narrative", "narrative": None},
        "court",
    )
    assert response.status_code == 200
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader")).json()[
        "items"
    ]
    assert history[-1]["snapshot"]["narrative"] is None
    assert history[0]["snapshot"]["narrative"]


def test_amending_arrest_time_rederives_juvenile(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload(arrested_at="2025-06-10T16:00:00+00:00")
    payload["involvements"][0]["person"]["birth_date"] = "2007-06-01"  # 18 since 1 June
    arrest_id = submit(client, world, payload).json()["arrest_id"]
    _patch(
        client,
        world,
        f"arrests/{arrest_id}",
        {"change": "correct", "reason": "date keyed wrong", "arrested_at": "2025-05-20T16:00:00Z"},
        "intake",
    )
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader")).json()[
        "items"
    ]
    assert history[0]["snapshot"]["involvements"][0]["juvenile"] is False
    assert history[1]["snapshot"]["involvements"][0]["juvenile"] is True


def test_arrest_time_cannot_precede_a_birth(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    payload["involvements"][1]["person"]["birth_date"] = "2001-01-01"
    arrest_id = submit(client, world, payload).json()["arrest_id"]
    response = _patch(
        client,
        world,
        f"arrests/{arrest_id}",
        {"reason": "wrong year", "arrested_at": "1999-01-01T12:00:00Z"},
        "intake",
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "arrested_at"


def test_person_amendment_versions_and_juvenile(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload(arrested_at="2025-06-10T16:00:00+00:00")
    body = submit(client, world, payload).json()
    person_id, arrest_id = body["person_ids"][0], body["arrest_id"]
    mark = last_audit_id(db)
    response = _patch(
        client,
        world,
        f"persons/{person_id}",
        {
            "change": "correct",
            "reason": "birth year keyed as 1997 on the booking sheet; ID shows 2008",
            "birth_date": "2008-02-03",
            "family_name": "Nguyễn",
        },
        "intake",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "person_id": person_id, "version": 2, "audit_entry": last_audit_id(db)
    }  # fmt: skip
    assert audit_since(db, mark) == [("write", "person.correct", "ok")]
    with db.session() as session:
        person = session.get(Person, person_id)
        assert person is not None
        assert person.name_key.startswith("nguyen ")
        juvenile = session.scalar(
            select(Involvement.juvenile).where(
                Involvement.arrest_id == arrest_id, Involvement.person_id == person_id
            )
        )
        assert juvenile is True
    people = client.get(f"{API}/persons/{person_id}/history", headers=world.auth("reader")).json()[
        "items"
    ]
    assert [v["change"] for v in people] == ["create", "correct"]
    assert people[0]["snapshot"]["birth_date"] == payload["involvements"][0]["person"]["birth_date"]
    assert people[1]["snapshot"]["birth_date"] == "2008-02-03"
    # The arrest's juvenile flag changed, so the arrest got a version too, with the same reason.
    arrests = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader")).json()[
        "items"
    ]
    assert [v["change"] for v in arrests] == ["create", "correct"]
    assert arrests[1]["reason"].startswith("birth year keyed")


def test_person_birth_date_after_an_arrest_is_refused(
    client: TestClient, world: World, db: Database
) -> None:
    body = submit(client, world, arrest_payload(arrested_at="2025-06-10T16:00:00Z")).json()
    response = _patch(
        client,
        world,
        f"persons/{body['person_ids'][0]}",
        {"reason": "new date", "birth_date": "2025-07-01"},
        "intake",
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "birth_date"


def test_person_sid_of_someone_else_is_refused(
    client: TestClient, world: World, db: Database
) -> None:
    one = submit(client, world, arrest_payload()).json()
    two = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        other = session.get(Person, two["person_ids"][0])
        assert other is not None
        sid = other.sid
    response = _patch(
        client, world, f"persons/{one['person_ids'][0]}", {"reason": "merge?", "sid": sid}, "intake"
    )
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "sid"


def test_required_person_name_cannot_be_removed(
    client: TestClient, world: World, db: Database
) -> None:
    body = submit(client, world, arrest_payload()).json()
    response = _patch(
        client,
        world,
        f"persons/{body['person_ids'][0]}",
        {"reason": "unknown", "family_name": None},
        "intake",
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "family_name"


@pytest.mark.parametrize("user", ["reader", "pretrial", "ice"])
def test_amend_needs_the_permission(
    client: TestClient, world: World, db: Database, user: str
) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    response = _patch(
        client, world, f"arrests/{arrest_id}", {"reason": "x" * 5, "location": "y"}, user
    )
    assert response.status_code == 403


def test_history_is_for_internal_readers_only(
    client: TestClient, world: World, db: Database
) -> None:
    body = submit(client, world, arrest_payload()).json()
    for path in (f"arrests/{body['arrest_id']}", f"persons/{body['person_ids'][0]}"):
        for user in ("ice", "fbi"):
            response = client.get(f"{API}/{path}/history", headers=world.auth(user))
            missing = client.get(
                f"{API}/{path.split('/')[0]}/987654/history", headers=world.auth(user)
            )
            # Refused at the edge for lacking record:read, the same for every id: whether a
            # record exists is not told.
            assert response.status_code == missing.status_code == 403
            # Alike but for the audit entry each refusal names (the next id either way).
            refused, absent = response.json()["error"], missing.json()["error"]
            assert refused.pop("audit_entry") + 1 == absent.pop("audit_entry")
            assert refused == absent
    mark = last_audit_id(db)
    ok = client.get(f"{API}/arrests/{body['arrest_id']}/history", headers=world.auth("pretrial"))
    assert ok.status_code == 200
    assert audit_since(db, mark) == [("read", "arrest.history", "ok")]


def test_service_level_amend_person_writes_versions(db: Database, world: World) -> None:
    from openpars.records.schemas import ArrestCreate

    with db.session() as session:
        created = service.submit_arrest(
            session,
            actor=world.principals["intake"],
            data=ArrestCreate.model_validate(arrest_payload()),
        )
        person_id = created.person_ids[1]
        person = service.amend_person(
            session,
            actor=world.principals["charging"],
            person_id=person_id,
            data=PersonAmend(reason="victim moved", address="1 Penn Sq, Philadelphia, PA 19107"),
            now=datetime(2026, 5, 1, tzinfo=UTC),
        )
        assert person.version == 2
        rows = service.history(
            session,
            actor=world.principals["reader"],
            entity=VersionedEntity.PERSON,
            entity_id=person_id,
        )
        assert [(r.version, r.change) for r in rows] == [
            (1, ChangeKind.CREATE),
            (2, ChangeKind.AMEND),
        ]
        assert rows[1].changed_by_id == world.users["charging"]
        assert rows[0].snapshot["address"] != rows[1].snapshot["address"]
        with pytest.raises(NotFound):
            service.history(
                session,
                actor=world.principals["ice"],
                entity=VersionedEntity.PERSON,
                entity_id=person_id,
            )

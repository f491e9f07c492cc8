"""Sealing, unsealing and expungement by court order; sealed records vanish for most callers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpars.db import Database
from openpars.identity.roles import Role
from openpars.records import service
from openpars.records.enums import VersionedEntity
from openpars.records.schemas import ArrestCreate, SealCreate
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import (
    API,
    add_user,
    audit_since,
    charging,
    last_audit_id,
    row_counts,
    step,
    submit,
)


def _order(action: str, ref: str = "CP-51-MD-0001234-2026") -> dict[str, str]:
    return {"action": action, "order_reference": ref, "reason": "petition granted, 18 Pa.C.S. 9122"}


def _seal(client: TestClient, world: World, arrest_id: int, action: str, user: str) -> Any:
    return client.post(
        f"{API}/arrests/{arrest_id}/seal", json=_order(action), headers=world.auth(user)
    )


def _same_as_missing(response: Any, missing: Any, arrest_id: int) -> None:
    """A hidden arrest answers exactly like an id that never existed."""
    assert response.status_code == missing.status_code == 404
    hidden = response.json()["error"]
    absent = missing.json()["error"]
    assert hidden["code"] == absent["code"]
    assert hidden.get("field") == absent.get("field")
    assert hidden["message"].replace(str(arrest_id), "N") == absent["message"].replace("99999", "N")


def test_seal_unseal_expunge(client: TestClient, world: World, db: Database) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    mark = last_audit_id(db)
    sealed = _seal(client, world, arrest_id, "seal", "court")
    assert sealed.status_code == 200, sealed.json()
    assert sealed.json()["sealed"] is True
    assert audit_since(db, mark) == [("write", "arrest.seal", "ok")]

    # The court account without sealed access no longer finds it, for any write or history.
    for path, body in (("charging-decision", charging()), ("seal", _order("unseal"))):
        user = "charging" if path == "charging-decision" else "court"
        hidden = step(client, world, arrest_id, path, body, user)
        missing = step(client, world, 99999, path, body, user)
        _same_as_missing(hidden, missing, arrest_id)
    amend = {"reason": "new location", "location": "elsewhere"}
    hidden = client.patch(f"{API}/arrests/{arrest_id}", json=amend, headers=world.auth("court"))
    missing = client.patch(f"{API}/arrests/99999", json=amend, headers=world.auth("court"))
    _same_as_missing(hidden, missing, arrest_id)
    hidden = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader"))
    missing = client.get(f"{API}/arrests/99999/history", headers=world.auth("reader"))
    _same_as_missing(hidden, missing, arrest_id)

    # The clerk, who holds sealed access, still sees it and can unseal it.
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("clerk"))
    assert [v["change"] for v in history.json()["items"]] == ["create", "seal"]
    assert history.json()["items"][1]["snapshot"]["seal_order"] == "CP-51-MD-0001234-2026"
    assert "CP-51-MD-0001234-2026" in history.json()["items"][1]["reason"]
    again = _seal(client, world, arrest_id, "seal", "clerk")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_sealed"
    mark = last_audit_id(db)
    unsealed = _seal(client, world, arrest_id, "unseal", "clerk")
    assert unsealed.json()["sealed"] is False
    assert audit_since(db, mark) == [("write", "arrest.unseal", "ok")]
    assert step(client, world, arrest_id, "charging-decision", charging(), "charging").is_success
    not_sealed = _seal(client, world, arrest_id, "unseal", "clerk")
    assert not_sealed.status_code == 409
    assert not_sealed.json()["error"]["code"] == "not_sealed"

    mark = last_audit_id(db)
    expunged = _seal(client, world, arrest_id, "expunge", "court")
    assert expunged.json()["expunged"] is True
    assert audit_since(db, mark) == [("write", "arrest.expunge", "ok")]
    hidden = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("court"))
    assert hidden.status_code == 404
    refused = _seal(client, world, arrest_id, "unseal", "clerk")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "already_expunged"
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("clerk")).json()[
        "items"
    ]
    assert [v["change"] for v in history] == ["create", "seal", "unseal", "charging", "expunge"]
    # Nothing left the store: the expunged record is still there for those allowed to see it.
    assert history[-1]["snapshot"]["involvements"]


@pytest.mark.parametrize(
    ("user", "code"),
    [
        ("charging", "permission_denied"),
        ("intake", "permission_denied"),
        ("da_court", "wrong_agency"),
    ],
)
def test_only_the_court_seals(
    client: TestClient, world: World, db: Database, user: str, code: str
) -> None:
    add_user(db, world, "da_court", "District Attorney's Office", [Role.COURT])
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    before = row_counts(db)
    response = _seal(client, world, arrest_id, "seal", user)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert row_counts(db) == before


def test_person_only_in_sealed_arrests_is_hidden(
    client: TestClient, world: World, db: Database
) -> None:
    body = submit(client, world, arrest_payload()).json()
    _seal(client, world, body["arrest_id"], "seal", "court")
    person_id = body["person_ids"][0]
    hidden = client.get(f"{API}/persons/{person_id}/history", headers=world.auth("reader"))
    missing = client.get(f"{API}/persons/99999/history", headers=world.auth("reader"))
    assert hidden.status_code == missing.status_code == 404
    amend = {"reason": "moved house", "address": "1 Penn Sq"}
    assert (
        client.patch(f"{API}/persons/{person_id}", json=amend, headers=world.auth("intake"))
    ).status_code == 404
    seen = client.get(f"{API}/persons/{person_id}/history", headers=world.auth("clerk"))
    assert seen.status_code == 200


def test_service_level_sealing(db: Database, world: World) -> None:
    p = world.principals
    with db.session() as session:
        created = service.submit_arrest(
            session, actor=p["intake"], data=ArrestCreate.model_validate(arrest_payload())
        )
        arrest = service.seal_arrest(
            session,
            actor=p["court"],
            arrest_id=created.arrest_id,
            data=SealCreate.model_validate(_order("seal")),
        )
        assert arrest.is_sealed
        rows = service.history(
            session, actor=p["clerk"], entity=VersionedEntity.ARREST, entity_id=arrest.id
        )
        assert rows[-1].snapshot["sealed_at"] is not None
        assert rows[-1].changed_by_id == world.users["court"]

"""Every bad input of the issue: a 4xx whose JSON names the field, and nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpars.config import Settings
from openpars.db import Database
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import (
    API,
    arraignment,
    bail,
    charging,
    row_counts,
    step,
    submit,
)

Mutation = Callable[[dict[str, Any]], None]


def _drop(key: str) -> Mutation:
    return lambda p: p.pop(key)


def _set(path: str, value: Any) -> Mutation:
    def mutate(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


# Fixed far ahead, not computed at import: the cases are built once at collection, and a clock
# read then is stale by the time a long run (or one started on another day) reaches them.
FUTURE = "2999-01-01T12:00:00+00:00"

BAD_ARRESTS: list[tuple[str, Mutation, int, str]] = [
    ("missing field", _drop("arresting_officer"), 422, "arresting_officer"),
    ("missing report id", _drop("report_id"), 422, "report_id"),
    ("unknown field", _set("involvements.0.person.nickname", "Boo"), 422,
     "involvements.0.person.nickname"),
    ("unknown top-level field", _set("priority", "high"), 422, "priority"),
    ("arrest in the future", _set("arrested_at", FUTURE), 422, "arrested_at"),
    ("arrest time without zone", _set("arrested_at", "2025-03-01T10:00:00"), 422, "arrested_at"),
    ("impossible date", _set("arrested_at", "2025-02-30T10:00:00Z"), 422, "arrested_at"),
    ("birth after arrest", _set("involvements.1.person.birth_date", "2026-01-01"), 422,
     "involvements.1.person.birth_date"),
    ("statute format", _set("charges.0.statute", "2701"), 422, "charges.0.statute"),
    ("statute title only", _set("charges.1.statute", "18 §"), 422, "charges.1.statute"),
    ("grade outside list", _set("charges.0.grade", "F4"), 422, "charges.0.grade"),
    ("role outside list", _set("involvements.2.role", "bystander"), 422, "involvements.2.role"),
    ("no arrestee", _set("involvements.0.role", "other"), 422, "body"),
    ("no charges", _set("charges", []), 422, "charges"),
    ("OTN shape", _set("otn", "12345"), 422, "otn"),
    ("ORI shape", _set("ori", "PPD"), 422, "ori"),
    ("arrest type outside list", _set("arrest_type", "citizen"), 422, "arrest_type"),
    ("person and person_id", _set("involvements.1.person_id", 1), 422, "involvements.1"),
    ("SID shape", _set("involvements.0.person.sid", "sid with spaces"), 422,
     "involvements.0.person.sid"),
    ("counts zero", _set("charges.0.counts", 0), 422, "charges.0.counts"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [pytest.param(m, s, f, id=name) for name, m, s, f in BAD_ARRESTS],
)
def test_bad_arrest_is_refused_and_nothing_written(
    client: TestClient, world: World, db: Database, mutate: Mutation, status: int, field: str
) -> None:
    payload = arrest_payload(arrested_at="2025-12-01T20:15:00-05:00")
    mutate(payload)
    before = row_counts(db)
    response = submit(client, world, payload)
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert row_counts(db) == before


def test_malformed_json(client: TestClient, world: World, db: Database) -> None:
    before = row_counts(db)
    response = client.post(
        f"{API}/arrests",
        content=b'{"report_id": "PPD-1", "ori": ',
        headers={**world.auth("intake"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"]["problems"][0]["rule"] == "json_invalid"
    assert error["field"] == "body"
    assert row_counts(db) == before


def test_body_that_is_not_an_object(client: TestClient, world: World, db: Database) -> None:
    response = client.post(f"{API}/arrests", json=[1, 2, 3], headers=world.auth("intake"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"


def test_oversized_payload(
    client: TestClient, world: World, db: Database, settings: Settings
) -> None:
    payload = arrest_payload(narrative="x" * (settings.max_request_bytes + 10))
    body = json.dumps(payload).encode()
    assert len(body) > settings.max_request_bytes
    before = row_counts(db)
    response = client.post(
        f"{API}/arrests",
        content=body,
        headers={**world.auth("intake"), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert row_counts(db) == before


@pytest.fixture
def charged(client: TestClient, world: World) -> int:
    """An arrest the DA has charged."""
    arrest_id: int = submit(client, world, arrest_payload()).json()["arrest_id"]
    assert step(client, world, arrest_id, "charging-decision", charging(), "charging").is_success
    return arrest_id


BAD_STEPS: list[tuple[str, str, dict[str, Any], str, int, str]] = [
    ("docket shape", "arraignment", arraignment(docket="CP-51-CR-0001234-2025"), "court", 422,
     "docket_number"),
    ("docket year", "arraignment", arraignment(docket="MC-51-CR-0001234-1899"), "court", 422,
     "docket_number"),
    ("arraigned before arrest", "arraignment",
     arraignment(arraigned_at="2020-01-01T10:00:00+00:00"), "court", 422, "arraigned_at"),
    ("arraigned in future", "arraignment", arraignment(arraigned_at=FUTURE), "court", 422,
     "arraigned_at"),
    ("hearing before arraignment", "arraignment",
     arraignment(preliminary_hearing_date="2026-03-01"), "court", 422,
     "preliminary_hearing_date"),
    ("bail type outside list", "arraignment", arraignment(bail_type="cash"), "court", 422,
     "bail_type"),
    ("monetary bail without amount", "bail-recommendation", bail(amount=None), "pretrial", 422,
     "body"),
    ("ROR with amount", "bail-recommendation", bail(bail_type="ror"), "pretrial", 422, "body"),
    ("negative amount", "bail-recommendation", bail(amount="-5"), "pretrial", 422, "amount"),
    ("decline without reason", "charging-decision", charging("declined"), "charging", 422,
     "body"),
    ("modified without charges", "charging-decision", charging("modified"), "charging", 422,
     "body"),
    ("approved with other charges", "charging-decision",
     charging(charges=[{"statute": "18 § 2702", "description": "Aggravated assault",
                        "grade": "F1"}]), "charging", 422, "charges"),
    ("grade outside list in decision", "charging-decision",
     charging("modified", charges=[{"statute": "18 § 2701", "description": "Simple assault",
                                    "grade": "M4"}]), "charging", 422, "charges.0.grade"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "user", "status", "field"),
    [pytest.param(p, b, u, s, f, id=name) for name, p, b, u, s, f in BAD_STEPS],
)
def test_bad_workflow_step_is_refused_and_nothing_written(
    client: TestClient,
    world: World,
    db: Database,
    charged: int,
    path: str,
    body: dict[str, Any],
    user: str,
    status: int,
    field: str,
) -> None:
    before = row_counts(db)
    response = step(client, world, charged, path, body, user)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["field"] == field
    assert row_counts(db) == before


def test_docket_number_already_used(
    client: TestClient, world: World, db: Database, charged: int
) -> None:
    assert step(client, world, charged, "arraignment", arraignment(), "court").status_code == 201
    other = submit(client, world, arrest_payload()).json()["arrest_id"]
    step(client, world, other, "charging-decision", charging(), "charging")
    before = row_counts(db)
    response = step(client, world, other, "arraignment", arraignment(), "court")
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("docket_taken", "docket_number")
    assert "MC-51-CR-0007226-2025" in error["message"]
    assert row_counts(db) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "ok", "narrative": "x"}, "reason"),
        ({"narrative": "no reason given"}, "reason"),
        ({"reason": "fix the time", "arrested_at": FUTURE}, "arrested_at"),
        ({"reason": "remove officer", "arresting_officer": None}, "arresting_officer"),
        ({"reason": "bad otn", "otn": "N1"}, "otn"),
        ({"reason": "nothing at all"}, "body"),
        ({"reason": "unknown", "colour": "red"}, "colour"),
    ],
)
def test_bad_amendment_is_refused_and_nothing_written(
    client: TestClient, world: World, db: Database, body: dict[str, Any], field: str
) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    before = row_counts(db)
    response = client.patch(f"{API}/arrests/{arrest_id}", json=body, headers=world.auth("intake"))
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["field"] == field
    assert row_counts(db) == before

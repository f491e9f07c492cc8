"""The arrest workflow: happy path, every out-of-order step, every wrong owner, revisions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.db import Database
from openpars.errors import Conflict, Forbidden, NotFound
from openpars.identity.roles import Role
from openpars.records import service
from openpars.records.enums import ArrestState, ChargeStage
from openpars.records.models import Arrest, Charge
from openpars.records.schemas import ArrestCreate, ChargingDecisionCreate, CustodyCreate
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import (
    API,
    add_user,
    arraignment,
    audit_since,
    bail,
    charging,
    custody,
    last_audit_id,
    row_counts,
    step,
    submit,
)

STEPS: dict[str, tuple[str, dict[str, Any], str]] = {
    "charging": ("charging-decision", charging(), "charging"),
    "bail": ("bail-recommendation", bail(), "pretrial"),
    "arraign": ("arraignment", arraignment(), "court"),
    "custody": ("custody", custody(), "court"),
}


def _advance(client: TestClient, world: World, to: str) -> int:
    """An arrest brought to a state through the API."""
    arrest_id: int = submit(client, world, arrest_payload()).json()["arrest_id"]
    path = {
        "entered": [],
        "charged": ["charging"],
        "declined": [],
        "arraigned": ["charging", "arraign"],
        "released": ["charging", "arraign", "custody"],
        "committed": ["charging", "arraign"],
    }[to]
    for name in path:
        where, body, user = STEPS[name]
        assert step(client, world, arrest_id, where, body, user).status_code == 201
    if to == "declined":
        body = charging("declined", reason="insufficient evidence of intent")
        assert step(client, world, arrest_id, "charging-decision", body, "charging").is_success
    if to == "committed":
        assert step(client, world, arrest_id, "custody", custody("committed"), "court").is_success
    return arrest_id


def test_full_workflow_happy_path(client: TestClient, world: World, db: Database) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    expected = [
        ("charging-decision", charging(), "charging", "charged", "arrest.charging_decision"),
        ("bail-recommendation", bail(), "pretrial", "charged", "arrest.bail_recommendation"),
        ("arraignment", arraignment(), "court", "arraigned", "arrest.arraignment"),
        ("custody", custody(), "court", "released", "arrest.custody"),
    ]
    for version, (path, body, user, state, action) in enumerate(expected, start=2):
        mark = last_audit_id(db)
        response = step(client, world, arrest_id, path, body, user)
        assert response.status_code == 201, response.json()
        assert response.json()["state"] == state
        assert response.json()["version"] == version
        assert audit_since(db, mark) == [("write", action, "ok")]
    with db.session() as session:
        arrest = session.get(Arrest, arrest_id)
        assert arrest is not None
        assert arrest.state is ArrestState.RELEASED
        assert arrest.docket_number == "MC-51-CR-0007226-2025"
        assert arrest.arraignment is not None
        assert arrest.arraignment.magistrate.startswith("Arraignment Court")
        assert arrest.custody is not None
        assert arrest.charging_decisions[0].decided_by_id == world.users["charging"]
        assert arrest.bail_recommendations[0].recommended_by_id == world.users["pretrial"]
        stages = sorted((c.stage.value, c.revision, c.sequence) for c in arrest.charges)
        assert stages == [("approved", 1, n) for n in (1, 2, 3)] + [
            ("recommended", 1, n) for n in (1, 2, 3)
        ]
    history = client.get(f"{API}/arrests/{arrest_id}/history", headers=world.auth("reader"))
    assert [v["change"] for v in history.json()["items"]] == [
        "create",
        "charging",
        "bail_recommendation",
        "arraignment",
        "custody",
    ]


def test_committed_and_declined_end_the_workflow(client: TestClient, world: World) -> None:
    committed = _advance(client, world, "committed")
    declined = _advance(client, world, "declined")
    for arrest_id, state in ((committed, "committed"), (declined, "declined")):
        for name in STEPS:
            where, body, user = STEPS[name]
            response = step(client, world, arrest_id, where, body, user)
            assert response.status_code == 409, (state, name)
            error = response.json()["error"]
            assert error["code"] == "out_of_order"
            assert error["details"] == {"state": state, "allowed_next": []}
            assert f"'{state}'" in error["message"]


# Every step that is out of order for each state where it is not allowed.
OUT_OF_ORDER = [
    ("entered", "bail"),
    ("entered", "arraign"),
    ("entered", "custody"),
    ("charged", "custody"),
    ("arraigned", "charging"),
    ("arraigned", "bail"),
    ("arraigned", "arraign"),
    ("released", "charging"),
    ("released", "custody"),
]


@pytest.mark.parametrize(("state", "name"), OUT_OF_ORDER)
def test_out_of_order_step_is_a_conflict_naming_state_and_next(
    client: TestClient, world: World, db: Database, state: str, name: str
) -> None:
    arrest_id = _advance(client, world, state)
    where, body, user = STEPS[name]
    if name == "arraign":
        body = arraignment(docket="MC-51-CR-0000001-2025")
    before = row_counts(db)
    response = step(client, world, arrest_id, where, body, user)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "out_of_order"
    assert error["details"]["state"] == state
    assert f"state '{state}'" in error["message"]
    for allowed in error["details"]["allowed_next"]:
        assert allowed.split(" ")[0] in error["message"]
    assert row_counts(db) == before


@pytest.fixture
def misfits(db: Database, world: World) -> World:
    """Users holding a step's permission but working for the wrong kind of agency."""
    add_user(db, world, "cop_charging", "Philadelphia Police Department", [Role.CHARGING])
    add_user(db, world, "da_pretrial", "District Attorney's Office", [Role.PRETRIAL])
    add_user(db, world, "da_court", "District Attorney's Office", [Role.COURT])
    return world


WRONG_OWNER = [
    ("charging", "cop_charging", "wrong_agency"),
    ("charging", "court", "permission_denied"),
    ("charging", "intake", "permission_denied"),
    ("bail", "da_pretrial", "wrong_agency"),
    ("bail", "charging", "permission_denied"),
    ("arraign", "da_court", "wrong_agency"),
    ("arraign", "pretrial", "permission_denied"),
    ("custody", "da_court", "wrong_agency"),
    ("custody", "reader", "permission_denied"),
    ("custody", "ice", "permission_denied"),
]


@pytest.mark.parametrize(("name", "user", "code"), WRONG_OWNER)
def test_wrong_owner_is_forbidden(
    client: TestClient, misfits: World, db: Database, name: str, user: str, code: str
) -> None:
    state = {"charging": "entered", "bail": "charged", "arraign": "charged"}.get(name, "arraigned")
    arrest_id = _advance(client, misfits, state)
    where, body, _ = STEPS[name]
    before = row_counts(db)
    response = step(client, misfits, arrest_id, where, body, user)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert row_counts(db) == before


def test_wrong_owner_message_names_the_owner(
    client: TestClient, misfits: World, db: Database
) -> None:
    arrest_id = _advance(client, misfits, "entered")
    response = step(client, misfits, arrest_id, "charging-decision", charging(), "cop_charging")
    message = response.json()["error"]["message"]
    assert "District Attorney" in message
    assert "police" in message


def test_step_on_missing_arrest_is_not_found(client: TestClient, world: World) -> None:
    response = step(client, world, 424242, "charging-decision", charging(), "charging")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "arrest_id"


def test_redecision_while_charged_adds_a_revision(
    client: TestClient, world: World, db: Database
) -> None:
    arrest_id = _advance(client, world, "charged")
    modified = charging(
        "modified",
        reason="theft unsupported; aggravated assault on the injuries",
        charges=[
            {"statute": "18 § 2702(a)(1)", "description": "Aggravated assault", "grade": "F1"},
            {"statute": "18 § 2701", "description": "Simple assault", "grade": "M2"},
        ],
    )
    response = step(client, world, arrest_id, "charging-decision", modified, "charging")
    assert response.status_code == 201
    assert response.json()["state"] == "charged"
    with db.session() as session:
        rows = session.scalars(
            select(Charge)
            .where(Charge.arrest_id == arrest_id, Charge.stage == ChargeStage.APPROVED)
            .order_by(Charge.revision, Charge.sequence)
        ).all()
        assert [(c.revision, c.statute) for c in rows] == [
            (1, "18 § 2701"),
            (1, "18 § 3921(a)"),
            (1, "35 § 780-113(a)(30)"),
            (2, "18 § 2702(a)(1)"),
            (2, "18 § 2701"),
        ]
        arrest = session.get(Arrest, arrest_id)
        assert arrest is not None
        assert [d.outcome.value for d in arrest.charging_decisions] == ["approved", "modified"]
    # A decline while charged withdraws the charges and ends the workflow.
    decline = charging("declined", reason="complainant recanted")
    response = step(client, world, arrest_id, "charging-decision", decline, "charging")
    assert response.json()["state"] == "declined"


def test_declined_first_keeps_recommended_charges_only(
    client: TestClient, world: World, db: Database
) -> None:
    arrest_id = _advance(client, world, "declined")
    with db.session() as session:
        stages = session.scalars(select(Charge.stage).where(Charge.arrest_id == arrest_id)).all()
    assert set(stages) == {ChargeStage.RECOMMENDED}


def test_several_bail_recommendations_are_kept(client: TestClient, world: World) -> None:
    arrest_id = _advance(client, world, "charged")
    step(client, world, arrest_id, "bail-recommendation", bail(), "pretrial")
    ror = {"bail_type": "ror", "conditions": "report weekly"}
    response = step(client, world, arrest_id, "bail-recommendation", ror, "pretrial")
    assert response.json()["version"] == 4


def test_custody_before_arraignment_time_is_refused(client: TestClient, world: World) -> None:
    arrest_id = _advance(client, world, "arraigned")
    early = custody(at="2026-03-20T13:00:00+00:00")
    response = step(client, world, arrest_id, "custody", early, "court")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "at"


def test_service_level_workflow(db: Database, world: World) -> None:
    p = world.principals
    with db.session() as session:
        created = service.submit_arrest(
            session, actor=p["intake"], data=ArrestCreate.model_validate(arrest_payload())
        )
        arrest_id = created.arrest_id
        with pytest.raises(Forbidden):
            service.decide_charges(
                session,
                actor=p["court"],
                arrest_id=arrest_id,
                data=ChargingDecisionCreate(outcome="approved"),
            )
        with pytest.raises(NotFound):
            service.decide_charges(
                session,
                actor=p["charging"],
                arrest_id=arrest_id + 1000,
                data=ChargingDecisionCreate(outcome="approved"),
            )
        arrest = service.decide_charges(
            session,
            actor=p["charging"],
            arrest_id=arrest_id,
            data=ChargingDecisionCreate(outcome="approved"),
        )
        assert arrest.state is ArrestState.CHARGED
        with pytest.raises(Conflict) as info:
            service.record_custody(
                session,
                actor=p["court"],
                arrest_id=arrest_id,
                data=CustodyCreate.model_validate(custody()),
            )
        assert info.value.details["allowed_next"][0].startswith("charging-decision")


def test_a_decision_on_a_stale_version_is_refused_and_writes_nothing(
    client: TestClient, world: World, db: Database
) -> None:
    """Two attorneys open the same arrest; the second decision names the version it saw."""
    arrest_id = _advance(client, world, "entered")
    first = step(client, world, arrest_id, "charging-decision", charging(version=1), "charging")
    assert first.status_code == 201 and first.json()["version"] == 2
    before, mark = row_counts(db), last_audit_id(db)
    body = charging("declined", reason="insufficient evidence", version=1)
    stale = step(client, world, arrest_id, "charging-decision", body, "charging")
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert error["code"] == "version_mismatch" and error["field"] == "version"
    assert "has changed since you saw it" in error["message"]
    assert row_counts(db) == before
    # The refusal is audited (one entry), as every refused call is.
    assert [(k, a) for k, a, _ in audit_since(db, mark)] == [
        ("refused", f"POST /api/v1/arrests/{arrest_id}/charging-decision")
    ]
    # Without a version the API behaves as before; with the current one it is accepted.
    current = step(client, world, arrest_id, "charging-decision", charging(version=2), "charging")
    assert current.status_code == 201, current.text


@pytest.mark.parametrize("version", [0, -1, "two", 2**31])
def test_a_decision_version_out_of_range_is_refused(
    client: TestClient, world: World, version: object
) -> None:
    arrest_id = _advance(client, world, "entered")
    body = charging(version=version)
    answer = step(client, world, arrest_id, "charging-decision", body, "charging")
    assert answer.status_code == 422
    assert answer.json()["error"]["field"].endswith("version")

"""Intake: submission, idempotent resend, person matching (auto-link, candidates, choice)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.db import Database
from openpars.errors import Conflict, Forbidden
from openpars.identity.roles import Role
from openpars.records import service
from openpars.records.enums import ChargeStage, InvolvementRole
from openpars.records.models import Arrest, Charge, Involvement, Person
from openpars.records.schemas import ArrestCreate, PersonIn
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload
from tests.records.helpers import API, add_user, audit_since, last_audit_id, row_counts, submit


def test_submit_creates_everything_with_ids(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    mark = last_audit_id(db)
    response = submit(client, world, payload)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "entered"
    assert body["replayed"] is False
    assert len(body["person_ids"]) == len(body["involvement_ids"]) == 3
    assert len(body["charge_ids"]) == 3
    assert [link["matched_on"] for link in body["links"]] == ["new", "new", "new"]
    assert audit_since(db, mark) == [("write", "arrest.create", "ok")]
    with db.session() as session:
        arrest = session.get(Arrest, body["arrest_id"])
        assert arrest is not None
        assert arrest.report_id == payload["report_id"]
        assert arrest.source_agency_id == world.agencies["Philadelphia Police Department"]
        assert arrest.entered_by_id == world.users["intake"]
        roles = [(i.person_id, i.role) for i in arrest.involvements]
        assert roles == list(
            zip(body["person_ids"], [InvolvementRole.ARRESTEE, InvolvementRole.VICTIM,
                                     InvolvementRole.WITNESS], strict=True)
        )  # fmt: skip
        charges = sorted(arrest.charges, key=lambda c: c.sequence)
        assert [(c.stage, c.revision, c.sequence) for c in charges] == [
            (ChargeStage.RECOMMENDED, 1, 1),
            (ChargeStage.RECOMMENDED, 1, 2),
            (ChargeStage.RECOMMENDED, 1, 3),
        ]
        assert charges[0].statute == "18 § 2701"
        arrestee = session.get(Person, body["person_ids"][0])
        assert arrestee is not None
        family = payload["involvements"][0]["person"]["family_name"]
        assert arrestee.name_key.startswith(family.lower())
        assert next(a.name_key for a in arrestee.aliases).startswith(family.lower())


def test_name_key_folds_accents_and_case(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    payload["involvements"][0]["person"].update(
        family_name="Peña-Núñez", given_name="JOSÉ", middle_name="Ángel"
    )
    body = submit(client, world, payload).json()
    with db.session() as session:
        person = session.get(Person, body["person_ids"][0])
        assert person is not None
        assert person.name_key == "pena nunez jose angel"


def test_resend_is_idempotent(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    first = submit(client, world, payload)
    assert first.status_code == 201
    counts = row_counts(db)
    mark = last_audit_id(db)
    again = submit(client, world, copy.deepcopy(payload))
    assert again.status_code == 200
    second = again.json()
    assert second["replayed"] is True
    for key in ("arrest_id", "person_ids", "involvement_ids", "charge_ids"):
        assert second[key] == first.json()[key]
    assert row_counts(db) == counts
    assert audit_since(db, mark) == [("write", "arrest.create.replayed", "ok")]
    with db.session() as session:
        reports = session.scalars(
            select(Arrest.id).where(Arrest.report_id == payload["report_id"])
        ).all()
        assert len(reports) == 1


def test_resend_with_different_payload_is_refused(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload()
    assert submit(client, world, payload).status_code == 201
    counts = row_counts(db)
    changed = copy.deepcopy(payload)
    changed["location"] = "Somewhere else entirely"
    response = submit(client, world, changed)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "report_id_reused"
    assert error["field"] == "report_id"
    assert payload["report_id"] in error["message"]
    assert row_counts(db) == counts


def test_same_report_id_from_another_agency_is_a_new_arrest(
    client: TestClient, world: World, db: Database
) -> None:
    add_user(db, world, "septa", "Philadelphia Police Department", [Role.INTAKE])
    payload = arrest_payload()
    first = submit(client, world, payload).json()
    # A sub-unit is a separate source: create a second police agency and send the same id.
    from openpars.identity import service as identity
    from openpars.identity.principal import SYSTEM
    from openpars.identity.schemas import AgencyCreate

    with db.session() as session:
        agency = identity.create_agency(
            session,
            actor=SYSTEM,
            data=AgencyCreate(name="SEPTA Transit Police", kind="police", ori="PA0511000"),
        )
        world.agencies["SEPTA Transit Police"] = agency.id
    add_user(db, world, "transit", "SEPTA Transit Police", [Role.INTAKE])
    other = arrest_payload(report_id=payload["report_id"], ori="PA0511000")
    for involvement in other["involvements"]:
        involvement["create_new_person"] = True
    response = submit(client, world, other, user="transit")
    assert response.status_code == 201, response.json()
    assert response.json()["arrest_id"] != first["arrest_id"]


def test_sid_match_links_existing_person(client: TestClient, world: World, db: Database) -> None:
    first = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        known = session.get(Person, first["person_ids"][0])
        assert known is not None
        sid = known.sid
    returning = person_payload(family_name="Different", given_name="Spelling", sid=sid)
    payload = arrest_payload()
    payload["involvements"][0]["person"] = returning
    counts = row_counts(db, ("persons",))
    response = submit(client, world, payload)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["person_ids"][0] == first["person_ids"][0]
    assert body["links"][0] == {
        "index": 0,
        "person_id": first["person_ids"][0],
        "matched_on": "sid",
    }
    # Only the new victim and witness were created; the linked person was not rewritten.
    assert row_counts(db, ("persons",))["persons"] == counts["persons"] + 2
    with db.session() as session:
        person = session.get(Person, first["person_ids"][0])
        assert person is not None
        assert person.family_name != "Different"
        assert person.version == 1


def test_fbi_match_links_existing_person(client: TestClient, world: World, db: Database) -> None:
    first = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        known = session.get(Person, first["person_ids"][0])
        assert known is not None
        fbi = known.fbi_number
    payload = arrest_payload()
    payload["involvements"][0]["person"] = person_payload(fbi_number=fbi)
    body = submit(client, world, payload).json()
    assert body["links"][0]["matched_on"] == "fbi_number"
    assert body["person_ids"][0] == first["person_ids"][0]


def test_sid_and_fbi_of_different_persons_is_refused(
    client: TestClient, world: World, db: Database
) -> None:
    one = submit(client, world, arrest_payload()).json()
    two = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        a = session.get(Person, one["person_ids"][0])
        b = session.get(Person, two["person_ids"][0])
        assert a is not None
        assert b is not None
        sid, fbi = a.sid, b.fbi_number
    payload = arrest_payload()
    payload["involvements"][0]["person"] = person_payload(sid=sid, fbi_number=fbi)
    counts = row_counts(db)
    response = submit(client, world, payload)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identifier_mismatch"
    assert response.json()["error"]["field"] == "involvements.0.person.fbi_number"
    assert row_counts(db) == counts


def test_candidates_then_explicit_choice(client: TestClient, world: World, db: Database) -> None:
    first = submit(client, world, arrest_payload()).json()
    victim = arrest_payload()["involvements"][1]["person"]  # a new person, for contrast
    with db.session() as session:
        known = session.get(Person, first["person_ids"][1])  # the first arrest's victim
        assert known is not None
        same = person_payload(
            family_name=known.family_name.upper(),
            given_name=known.given_name,
            birth_date=known.birth_date.isoformat() if known.birth_date else None,
        )
    payload = arrest_payload()
    payload["involvements"][1]["person"] = same
    payload["involvements"][2]["person"] = victim
    counts = row_counts(db)
    mark = last_audit_id(db)
    response = submit(client, world, payload)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "person_match_required"
    assert error["field"] == "involvements.1.person"
    [pending] = error["details"]["involvements"]
    assert pending["index"] == 1
    [candidate] = pending["candidates"]
    assert candidate["person_id"] == first["person_ids"][1]
    assert candidate["reason"] == "same name and birth date"
    assert candidate["birth_date"] == same["birth_date"]
    assert row_counts(db) == counts  # nothing written
    assert [a for _, a, _ in audit_since(db, mark)] == ["POST /api/v1/arrests"]  # the refusal

    # Intake chooses the existing person ...
    chosen = copy.deepcopy(payload)
    chosen["involvements"][1] = {"role": "victim", "person_id": candidate["person_id"]}
    body = submit(client, world, chosen).json()
    assert body["person_ids"][1] == first["person_ids"][1]
    assert body["links"][1]["matched_on"] == "person_id"

    # ... or, for another report, insists on a new one.
    other = arrest_payload()
    other["involvements"][1]["person"] = same
    other["involvements"][1]["create_new_person"] = True
    body = submit(client, world, other).json()
    assert body["person_ids"][1] not in (first["person_ids"][1],)
    assert body["links"][1]["matched_on"] == "new"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"birth_date": None}, "same name; birth date unknown on one side"),
        ({"middle_name": "Lee"}, "same name and birth date"),
        ({"family_name": "{family} Jr", "given_name": "Zed"}, "same birth date and a family"),
    ],
)
def test_candidate_rules(
    client: TestClient, world: World, db: Database, change: dict[str, object], reason: str
) -> None:
    first = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        known = session.get(Person, first["person_ids"][0])
        assert known is not None
        person = {
            "family_name": known.family_name,
            "given_name": known.given_name,
            "birth_date": known.birth_date,
        }
    for key, value in change.items():
        person[key] = value.format(family=known.family_name) if isinstance(value, str) else value
    with db.session() as session:
        found = service.match_candidates(
            session, actor=world.principals["intake"], person=PersonIn.model_validate(person)
        )
    assert [c.person_id for c in found] == [first["person_ids"][0]]
    assert found[0].reason.startswith(reason)


def test_different_birth_date_same_name_is_not_a_candidate(
    client: TestClient, world: World, db: Database
) -> None:
    first = submit(client, world, arrest_payload()).json()
    with db.session() as session:
        known = session.get(Person, first["person_ids"][0])
        assert known is not None
        person = PersonIn(
            family_name=known.family_name, given_name=known.given_name, birth_date="1901-01-01"
        )
        assert service.find_candidates(session, person, limit=10) == []


def test_alias_matches(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    submit(client, world, payload)
    arrestee = payload["involvements"][0]["person"]
    alias = arrestee["aliases"][0]
    response = client.post(
        f"{API}/persons/match",
        json={**alias, "birth_date": arrestee["birth_date"]},
        headers=world.auth("intake"),
    )
    assert response.status_code == 200
    assert [c["reason"] for c in response.json()["items"]] == ["same name and birth date"]


def test_match_endpoint_is_audited_and_needs_intake(
    client: TestClient, world: World, db: Database
) -> None:
    body = person_payload()
    mark = last_audit_id(db)
    response = client.post(f"{API}/persons/match", json=body, headers=world.auth("intake"))
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert audit_since(db, mark) == [("search", "person.match", "ok")]
    refused = client.post(f"{API}/persons/match", json=body, headers=world.auth("ice"))
    assert refused.status_code == 403


def test_juvenile_is_derived_from_birth_date_and_arrest_date(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload(arrested_at="2025-06-01T03:30:00+00:00")  # 31 May, 23:30 local
    payload["involvements"][0]["person"]["birth_date"] = "2007-06-01"  # 18 the next local day
    payload["involvements"][1]["person"]["birth_date"] = "2007-05-31"  # 18 that very day
    payload["involvements"][2]["person"]["birth_date"] = None
    body = submit(client, world, payload).json()
    with db.session() as session:
        flags = session.scalars(
            select(Involvement.juvenile)
            .where(Involvement.arrest_id == body["arrest_id"])
            .order_by(Involvement.id)
        ).all()
    assert flags == [True, False, None]  # no birth date: the age is unknown, not adult


def test_same_new_person_twice_by_sid_is_one_person(
    client: TestClient, world: World, db: Database
) -> None:
    payload = arrest_payload()
    person = payload["involvements"][0]["person"]
    payload["involvements"].append({"role": "complainant", "person": dict(person)})
    body = submit(client, world, payload).json()
    assert body["person_ids"][0] == body["person_ids"][3]


def test_same_person_same_role_twice_is_refused(
    client: TestClient, world: World, db: Database
) -> None:
    first = submit(client, world, arrest_payload()).json()
    payload = arrest_payload()
    payload["involvements"][1] = {"role": "victim", "person_id": first["person_ids"][1]}
    payload["involvements"][2] = {"role": "victim", "person_id": first["person_ids"][1]}
    response = submit(client, world, payload)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "involvements.2"


def test_unknown_person_id_is_refused(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    payload["involvements"][1] = {"role": "victim", "person_id": 999_999}
    counts = row_counts(db)
    response = submit(client, world, payload)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "involvements.1.person_id"
    assert row_counts(db) == counts


def test_duplicate_otn_is_refused(client: TestClient, world: World, db: Database) -> None:
    payload = arrest_payload()
    submit(client, world, payload)
    again = arrest_payload(otn=payload["otn"])
    counts = row_counts(db)
    response = submit(client, world, again)
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "otn"
    assert row_counts(db) == counts


@pytest.mark.parametrize(("user", "code"), [("charging", "permission_denied"),
                                             ("reader", "permission_denied"),
                                             ("ice", "permission_denied"),
                                             ("da_intake", "wrong_agency")])  # fmt: skip
def test_only_police_intake_may_submit(
    client: TestClient, world: World, db: Database, user: str, code: str
) -> None:
    add_user(db, world, "da_intake", "District Attorney's Office", [Role.INTAKE])
    counts = row_counts(db)
    response = submit(client, world, arrest_payload(), user=user)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert row_counts(db) == counts


def test_service_level_submit_and_replay(db: Database, world: World) -> None:
    data = ArrestCreate.model_validate(arrest_payload())
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with db.session() as session:
        created = service.submit_arrest(
            session, actor=world.principals["intake"], data=data, now=now
        )
        replay = service.submit_arrest(
            session, actor=world.principals["intake"], data=data, now=now
        )
        assert replay.replayed
        assert replay.arrest_id == created.arrest_id
        assert replay.charge_ids == created.charge_ids
        charges = session.scalars(select(Charge).where(Charge.arrest_id == created.arrest_id)).all()
        assert len(charges) == 3
    with db.session() as session, pytest.raises(Forbidden):
        service.submit_arrest(session, actor=world.principals["court"], data=data)
    changed = data.model_copy(update={"narrative": "changed"})
    with db.session() as session, pytest.raises(Conflict) as info:
        service.submit_arrest(session, actor=world.principals["intake"], data=changed, now=now)
    assert info.value.field == "report_id"

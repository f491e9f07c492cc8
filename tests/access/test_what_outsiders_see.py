"""Issue 10 items 2, 3, 4 and 7, tried as an outside agency with its own valid token would.

Records are written through the real API (police intake, the DA's decisions, amendments) and
read back as ICE under an agreement in force: which charges decide visibility and are shown,
free text, persons of unknown age, and what a visibility set stores.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import inspect

from openpars.agreements import floor as floors
from openpars.agreements.floor import SiteFloor
from openpars.db import Database
from openpars.identity.principal import SYSTEM
from openpars.records.enums import ArrestState
from tests.access.agreements import activate, default_scope
from tests.agreements.helpers import FBI, ICE, decided_floor, document_dict, scope_dict
from tests.factories import World
from tests.records.factories import SIMPLE_ASSAULT, THEFT, arrest_payload
from tests.records.helpers import API, bail, charging, step, submit

PURPOSE = {"purpose": "warrant-service"}
DISORDERLY = {"statute": "18 § 5503(a)(4)", "description": "Disorderly conduct", "grade": "S"}
# Every state, declined included: only the charges can then hide a declined arrest.
EVERY_STATE = [state.value for state in ArrestState]


def _agreement(db: Database, world: World, **scope: Any) -> None:
    with db.session() as session:
        activate(session, world, scope=default_scope(**scope))


def _intake(client: TestClient, world: World, **overrides: Any) -> tuple[int, dict[str, Any]]:
    payload = arrest_payload(**overrides)
    response = submit(client, world, payload)
    assert response.status_code == 201, response.text
    return int(response.json()["arrest_id"]), payload


def _arrestee(payload: dict[str, Any]) -> dict[str, Any]:
    person: dict[str, Any] = payload["involvements"][0]["person"]
    return person


def _as_ice(client: TestClient, world: World, path: str, **params: Any) -> Any:
    return client.get(f"{API}/{path}", params={**params, **PURPOSE}, headers=world.auth("ice"))


def _search(client: TestClient, world: World, otn: str, statute: str) -> Any:
    found = _as_ice(client, world, "arrests", otn=otn, statute=statute, count="true")
    assert found.status_code == 200, found.text
    return found.json()


def _invisible(client: TestClient, world: World, arrest_id: int, payload: dict[str, Any]) -> None:
    """The arrest, its arrestee and its charges are gone for ICE, as if they never existed."""
    assert _as_ice(client, world, f"arrests/{arrest_id}").status_code == 404
    sid = _arrestee(payload)["sid"]
    persons = _as_ice(client, world, "persons", sid=sid, count="true").json()
    assert persons["items"] == [] and persons["total"] == 0
    for charge in payload["charges"]:
        found = _search(client, world, payload["otn"], charge["statute"])
        assert found["items"] == [] and found["total"] == 0


def test_a_da_downgrade_hides_the_arrest_at_once(
    client: TestClient, db: Database, world: World
) -> None:
    # Police recommend simple assault (M2, in scope); the DA downgrades to a summary offence.
    _agreement(db, world)
    arrest_id, payload = _intake(client, world, charges=[dict(SIMPLE_ASSAULT)])
    assert _search(client, world, payload["otn"], SIMPLE_ASSAULT["statute"])["total"] == 1
    body = charging("modified", charges=[dict(DISORDERLY)], reason="downgraded")
    assert step(client, world, arrest_id, "charging-decision", body, "charging").is_success
    _invisible(client, world, arrest_id, payload)
    # Internal readers still see the arrest and every revision of its charges.
    inside = client.get(f"{API}/arrests/{arrest_id}", headers=world.auth("reader")).json()
    assert [c["stage"] for c in inside["arrest"]["charges"]] == ["approved", "recommended"]


def test_a_da_decline_hides_the_arrest_even_where_declined_arrests_are_in_scope(
    client: TestClient, db: Database, world: World
) -> None:
    _agreement(db, world, arrest_states=EVERY_STATE)
    arrest_id, payload = _intake(client, world, charges=[dict(SIMPLE_ASSAULT)])
    assert step(client, world, arrest_id, "charging-decision", charging(), "charging").is_success
    assert _as_ice(client, world, f"arrests/{arrest_id}").status_code == 200
    body = charging("declined", reason="complainant recanted")
    assert step(client, world, arrest_id, "charging-decision", body, "charging").is_success
    _invisible(client, world, arrest_id, payload)


def test_a_visible_arrest_shows_and_matches_only_its_current_charges_in_scope(
    client: TestClient, db: Database, world: World
) -> None:
    _agreement(db, world)
    arrest_id, payload = _intake(
        client, world, charges=[dict(SIMPLE_ASSAULT), dict(THEFT), dict(DISORDERLY)]
    )
    # The DA drops the assault: theft (M1, in scope) and the summary (S, out of scope) remain.
    body = charging("modified", charges=[dict(THEFT), dict(DISORDERLY)], reason="no injury")
    assert step(client, world, arrest_id, "charging-decision", body, "charging").is_success
    seen = _as_ice(client, world, f"arrests/{arrest_id}").json()["arrest"]
    assert [(c["stage"], c["statute"]) for c in seen["charges"]] == [("approved", THEFT["statute"])]
    otn = payload["otn"]
    assert _search(client, world, otn, THEFT["statute"])["total"] == 1
    # Neither the superseded recommendation nor the out-of-scope charge matches or counts.
    for statute in (SIMPLE_ASSAULT["statute"], DISORDERLY["statute"]):
        found = _search(client, world, otn, statute)
        assert found["items"] == [] and found["total"] == 0


def test_free_text_is_withheld_whatever_an_agreement_adopted_under_a_looser_floor_says(
    client: TestClient, db: Database, world: World
) -> None:
    granted = {
        **default_scope()["arrest_fields"],
        "narrative": "visible",
        "location": "visible",
        "bail_recommendations": "visible",
    }
    with db.session() as session:
        loose = SiteFloor(forbidden_arrest_fields=frozenset())
        decided_floor(session, loose, "test: a looser floor")
        activate(session, world, scope=default_scope(arrest_fields=granted))
    arrest_id, payload = _intake(client, world, charges=[dict(SIMPLE_ASSAULT)])
    assert step(client, world, arrest_id, "charging-decision", charging(), "charging").is_success
    stay_away = bail(conditions="stay away from the complainant at 1500 Market St")
    assert step(client, world, arrest_id, "bail-recommendation", stay_away, "pretrial").is_success
    before = _as_ice(client, world, f"arrests/{arrest_id}").json()["arrest"]
    assert before["narrative"] == payload["narrative"]  # the looser floor let it through
    with db.session() as session:
        floors.set_floor(session, actor=SYSTEM, floor=SiteFloor(), reason="test: back to default")
    after = _as_ice(client, world, f"arrests/{arrest_id}").json()["arrest"]
    assert after["narrative"] is None and after["location"] is None
    assert [b["conditions"] for b in after["bail_recommendations"]] == [None]
    assert [b["bail_type"] for b in after["bail_recommendations"]] == ["monetary"]


def test_an_agreement_granting_the_narrative_is_refused_when_proposed(
    client: TestClient, world: World
) -> None:
    admin = world.auth("agreements")
    # One grantee each: a grantee may hold only one agreement for a period.
    for name, grantee in (("narrative", ICE), ("location", FBI)):
        fields = {**scope_dict()["arrest_fields"], name: "visible"}
        document = document_dict(
            world,
            name=f"{grantee}: {name} granted",
            grantee_agency_id=world.agencies[grantee],
            scope=scope_dict(arrest_fields=fields),
        )
        created = client.post(f"{API}/agreements", json=document, headers=admin)
        assert created.status_code == 201, created.text
        created = created.json()
        refused = client.post(f"{API}/agreements/{created['id']}/propose", headers=admin)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "floor_crossed"
        assert error["field"] == f"scope.arrest_fields.{name}"


def test_a_person_of_unknown_age_is_hidden_until_a_birth_date_shows_an_adult(
    client: TestClient, db: Database, world: World
) -> None:
    _agreement(db, world)
    payload = arrest_payload()
    payload["involvements"] = payload["involvements"][:1]
    person = _arrestee(payload)
    person.pop("birth_date")  # the booking system did not have it
    response = submit(client, world, payload)
    assert response.status_code == 201, response.text
    arrest_id = response.json()["arrest_id"]
    _invisible(client, world, arrest_id, payload)
    # Internal readers are not told the person is a juvenile: the age is unknown.
    inside = client.get(f"{API}/arrests/{arrest_id}", headers=world.auth("reader")).json()
    involvement = inside["arrest"]["involvements"][0]
    assert involvement["juvenile"] is None
    person_id = involvement["person_id"]

    def amend(birth_date: str | None) -> None:
        body = {"reason": "birth certificate produced", "birth_date": birth_date}
        answer = client.patch(f"{API}/persons/{person_id}", json=body, headers=world.auth("intake"))
        assert answer.is_success, answer.text

    amend("1980-02-01")  # a known adult: now visible, at once
    assert _as_ice(client, world, f"arrests/{arrest_id}").status_code == 200
    found = _as_ice(client, world, "persons", sid=person["sid"]).json()
    assert [p["id"] for p in found["items"]] == [person_id]
    amend(None)  # unknown again: hidden again
    _invisible(client, world, arrest_id, payload)


def test_a_visibility_set_stores_only_what_a_search_tests(
    client: TestClient, db: Database, world: World
) -> None:
    _agreement(db, world)
    with db.session() as session:
        columns = {c["name"] for c in inspect(session.connection()).get_columns("visible_persons")}
    # The searchable columns and the floor's verdict on the person (access.models), nothing of
    # the person's beyond them.
    assert columns == {
        "set_id",
        "person_id",
        "name_key",
        "sid",
        "fbi_number",
        "birth_date",
        "floor_visible",
    }
    # A name search through the set still shows what the agreement grants, masked.
    _, payload = _intake(client, world)
    person = _arrestee(payload)
    found = _as_ice(client, world, "persons", name=person["family_name"], sid=person["sid"])
    assert found.status_code == 200, found.text
    (item,) = found.json()["items"]
    assert item["given_name"] == person["given_name"]
    assert item["birth_date"] == person["birth_date"][:4]
    assert item["phone"] is not None and item["phone"] != person["phone"]
    assert item["citizenship"] is None and item["place_of_birth"] is None

"""What an outside agency learns through search criteria (issue 10, items 1 and 6).

Each test tries what the agency hunting for a person tried: testing a masked birth date or FBI
number value by value, a name through an alias it is not shown, an incident number it is not
shown, reversing a hashed SID, an order that tells how hidden names compare, a blank case
reference.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.agreements.floor import SiteFloor, set_floor
from openpars.agreements.models import AgreementVersion
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from openpars.records.models import Arrest, Person, PersonAlias
from openpars.records.validation import name_key
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.factories import World

POLICE = "Philadelphia Police Department"
PURPOSE = {"purpose": "warrant-service"}
SID = "807765726"
FBI = "123456AB7"


def _seed(db: Database, world: World, **scope: Any) -> dict[str, Any]:
    """Patrick Sullivan (alias Patrick Schmidt), arrested once, under the given scope."""
    with db.session() as s:
        agreement = activate(s, world, scope=default_scope(**scope))
        person = data.person(s, "Sullivan", "Patrick", birth_date=date(2002, 3, 10), sid=SID)
        row = s.get(Person, person.id)
        assert row is not None
        row.fbi_number = FBI
        s.add(
            PersonAlias(
                person_id=person.id,
                family_name="Schmidt",
                given_name="Patrick",
                name_key=name_key("Schmidt", "Patrick"),
            )
        )
        arrest = data.arrest(
            s, agency_id=world.agencies[POLICE], people=[(person, InvolvementRole.ARRESTEE)]
        )
        s.flush()
        loaded = s.get(Arrest, arrest.id)
        assert loaded is not None
        return {
            "agreement": agreement.id,
            "person": person.id,
            "arrest": arrest.id,
            "incident": loaded.incident_number,
            "otn": loaded.otn,
        }


def _get(client: TestClient, world: World, path: str, **params: str) -> Any:
    return client.get(path, params={**PURPOSE, **params}, headers=world.auth("ice"))


def _refusal(response: Any, status: int = 403) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_a_year_only_birth_date_cannot_be_tested_day_by_day(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    for day in ("2002-03-10", "2002-03-11"):
        error = _refusal(_get(client, world, "/api/v1/persons", sid=SID, birth_date=day))
        assert (error["code"], error["field"]) == ("criterion_not_allowed", "birth_date")
        assert "person.birth_date only masked (year_only)" in error["message"]
        assert "birth_year" in error["message"]
    # The year the agency is shown is a criterion at that precision.
    found = _get(client, world, "/api/v1/persons", sid=SID, birth_year="2002")
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["items"]] == [ids["person"]]
    assert found.json()["items"][0]["birth_date"] == "2002"
    other = _get(client, world, "/api/v1/persons", sid=SID, birth_year="2003")
    assert other.json()["items"] == []


def test_a_last_four_fbi_number_cannot_be_confirmed_whole(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    for guess in (FBI, "999999AB7"):
        error = _refusal(_get(client, world, "/api/v1/persons", fbi_number=guess))
        assert (error["code"], error["field"]) == ("criterion_not_allowed", "fbi_number")
        assert "person.fbi_number only masked (show_last_4)" in error["message"]


def test_withheld_aliases_do_not_answer_a_name_search(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    by_alias = _get(client, world, "/api/v1/persons", name="schmidt patrick", count="true")
    assert by_alias.status_code == 200, by_alias.text
    assert (by_alias.json()["items"], by_alias.json()["total"]) == ([], 0)
    by_name = _get(client, world, "/api/v1/persons", name="sullivan patrick")
    assert [p["id"] for p in by_name.json()["items"]] == [ids["person"]]
    # Internal readers still find the person by the alias.
    internal = client.get(
        "/api/v1/persons", params={"name": "schmidt patrick"}, headers=world.auth("reader")
    )
    assert [p["id"] for p in internal.json()["items"]] == [ids["person"]]


def test_aliases_answer_a_name_search_where_the_agreement_shows_them(
    client: TestClient, db: Database, world: World
) -> None:
    fields = {**default_scope()["person_fields"], "aliases": "visible"}
    ids = _seed(db, world, person_fields=fields)
    by_alias = _get(client, world, "/api/v1/persons", name="schmidt patrick")
    assert [p["id"] for p in by_alias.json()["items"]] == [ids["person"]]


def test_a_withheld_incident_number_is_not_a_criterion(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    error = _refusal(_get(client, world, "/api/v1/arrests", incident_number=ids["incident"]))
    assert (error["code"], error["field"]) == ("criterion_not_allowed", "incident_number")
    assert "does not show arrest.incident_number" in error["message"]
    # The same arrest by its OTN shows no incident number at all.
    found = _get(client, world, "/api/v1/arrests", otn=ids["otn"])
    assert [a["id"] for a in found.json()["items"]] == [ids["arrest"]]
    assert found.json()["items"][0].get("incident_number") is None


def test_a_hashed_sid_is_keyed_per_agreement_version_and_not_a_criterion(
    client: TestClient, db: Database, world: World
) -> None:
    fields = {**default_scope()["person_fields"], "sid": "hash"}
    ids = _seed(db, world, person_fields=fields)
    first = _get(client, world, "/api/v1/persons", name="sullivan").json()["items"][0]["sid"]
    again = _get(client, world, f"/api/v1/persons/{ids['person']}").json()["person"]["sid"]
    # Equal values compare equal for the grantee...
    assert first == again
    # ...but the hash is not the plain SHA-256 anyone could compute from a guessed SID.
    assert first != hashlib.sha256(SID.encode()).hexdigest()
    with db.session() as s:
        key = s.scalar(
            select(AgreementVersion.mask_key).where(
                AgreementVersion.agreement_id == ids["agreement"]
            )
        )
    assert key is not None and len(key) == 32
    assert first == hmac.new(key, SID.encode(), hashlib.sha256).hexdigest()
    error = _refusal(_get(client, world, "/api/v1/persons", sid=SID))
    assert (error["code"], error["field"]) == ("criterion_not_allowed", "sid")
    # No API returns the key.
    shown = client.get(f"/api/v1/agreements/{ids['agreement']}", headers=world.auth("agreements"))
    assert shown.status_code == 200, shown.text
    assert "mask_key" not in shown.text and key.hex() not in shown.text


def test_names_not_shown_whole_do_not_order_the_results(
    client: TestClient, db: Database, world: World
) -> None:
    """Middle names are withheld by the default scope: two John Does come in id order, not in
    the order of their middle names (which an internal reader gets)."""
    with db.session() as s:
        activate(s, world)
        zed = data.person(s, "Doe", "John", sid="SID-1")
        adam = data.person(s, "Doe", "John", sid="SID-2")
        for person, middle in ((zed, "Zed"), (adam, "Adam")):
            row = s.get(Person, person.id)
            assert row is not None
            row.middle_name = middle
            row.name_key = name_key("Doe", "John", middle)
            data.arrest(
                s, agency_id=world.agencies[POLICE], people=[(person, InvolvementRole.ARRESTEE)]
            )
        order = [zed.id, adam.id]
    external = _get(client, world, "/api/v1/persons", name="doe john")
    assert [p["id"] for p in external.json()["items"]] == order
    internal = client.get(
        "/api/v1/persons", params={"name": "doe john"}, headers=world.auth("reader")
    )
    assert [p["id"] for p in internal.json()["items"]] == order[::-1]
    # Words past family and given name would test the withheld middle name.
    error = _refusal(_get(client, world, "/api/v1/persons", name="doe john a"))
    assert (error["code"], error["field"]) == ("criterion_not_allowed", "name")


def test_arrest_times_not_shown_do_not_order_the_results(
    client: TestClient, db: Database, world: World
) -> None:
    fields = {k: v for k, v in default_scope()["arrest_fields"].items() if k != "arrested_at"}
    fields["incident_number"] = "visible"
    with db.session() as s:
        activate(s, world, scope=default_scope(arrest_fields=fields))
        ana = data.person(s, "Alvarez", "Ana", sid="SID-1")
        ids = []
        # The first arrest (lower id) is the later one.
        for day in (20, 10):
            arrest = data.arrest(
                s,
                agency_id=world.agencies[POLICE],
                people=[(ana, InvolvementRole.ARRESTEE)],
                arrested_at=datetime(2025, 3, day, tzinfo=UTC),
            )
            row = s.get(Arrest, arrest.id)
            assert row is not None
            row.incident_number = "25-37-011744"
            ids.append(arrest.id)
    params = {"incident_number": "25-37-011744"}
    external = _get(client, world, "/api/v1/arrests", **params)
    assert [a["id"] for a in external.json()["items"]] == ids[::-1]
    # Arrest times leave no trace in the order: the same order were the times swapped.
    internal = client.get("/api/v1/arrests", params=params, headers=world.auth("reader"))
    assert [a["id"] for a in internal.json()["items"]] == ids


def test_a_blank_case_reference_does_not_satisfy_a_purpose_that_requires_one(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    ice = world.auth("ice")
    base = {"sid": SID, "purpose": "criminal-investigation"}
    # `case_number=+` is a space once decoded; tabs and newlines are blank too.
    for blank in (" ", "   ", "\t\n"):
        response = client.get("/api/v1/persons", params={**base, "case_number": blank}, headers=ice)
        error = _refusal(response, 422)
        assert error["field"] == "case_number", blank
    raw = client.get(
        "/api/v1/persons?sid=807765726&purpose=criminal-investigation&case_number=+", headers=ice
    )
    assert _refusal(raw, 422)["field"] == "case_number"
    blank_purpose = client.get("/api/v1/persons", params={"sid": SID, "purpose": " "}, headers=ice)
    assert _refusal(blank_purpose, 422)["field"] == "purpose"
    # Surrounding blanks are dropped, not held against the caller.
    padded = client.get(
        "/api/v1/persons",
        params={**base, "purpose": " criminal-investigation ", "case_number": " 25-001 "},
        headers=ice,
    )
    assert padded.status_code == 200, padded.text


def test_nullified_aliases_come_back_null_in_searches_and_details(
    client: TestClient, db: Database, world: World
) -> None:
    """Found by the indistinguishability property: a nullify rule on aliases returned them."""
    fields = {**default_scope()["person_fields"], "aliases": "nullify"}
    ids = _seed(db, world, person_fields=fields)
    page = _get(client, world, "/api/v1/persons", sid=SID).json()
    assert page["items"][0]["aliases"] is None
    detail = _get(client, world, f"/api/v1/persons/{ids['person']}").json()
    assert detail["person"]["aliases"] is None
    # And a nullified alias answers no name search.
    assert _get(client, world, "/api/v1/persons", name="schmidt").json()["items"] == []


def test_birth_year_covers_exactly_its_year_and_refuses_impossible_years(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as s:
        people = [
            data.person(s, "Year", given, birth_date=born)
            for given, born in (
                ("First", date(1990, 1, 1)),
                ("Last", date(1990, 12, 31)),
                ("Before", date(1989, 12, 31)),
                ("After", date(1991, 1, 1)),
            )
        ]
        for person in people:
            data.arrest(
                s, agency_id=world.agencies[POLICE], people=[(person, InvolvementRole.ARRESTEE)]
            )
        wanted = [people[0].id, people[1].id]
    reader = world.auth("reader")
    found = client.get("/api/v1/persons", params={"birth_year": "1990"}, headers=reader)
    assert sorted(p["id"] for p in found.json()["items"]) == wanted
    for year in ("0", "9999", "99999999999999999999"):
        refused = client.get("/api/v1/persons", params={"birth_year": year}, headers=reader)
        assert _refusal(refused, 422)["field"] == "birth_year", year


def test_a_criterion_the_floor_removes_is_refused_naming_the_floor(
    client: TestClient, db: Database, world: World
) -> None:
    """The floor tightened after the agreement was adopted binds its searches at once."""
    _seed(db, world)
    with db.session() as s:
        floor = SiteFloor(
            forbidden_person_fields=frozenset({"place_of_birth", "citizenship", "sid"})
        )
        set_floor(s, actor=world.principals["agreements"], floor=floor, reason="SIDs stay home")
    error = _refusal(_get(client, world, "/api/v1/persons", sid=SID))
    assert (error["code"], error["field"]) == ("criterion_not_allowed", "sid")
    assert "the site floor removes person.sid" in error["message"]

"""Query-shape refusals: each names the field at fault and says what the agreement allows."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.factories import World

POLICE = "Philadelphia Police Department"
PURPOSE = {"purpose": "warrant-service"}


def _limits(**overrides: Any) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "exact_identifiers_only": True,
        "name_search": False,
        "max_results": 10,
        "rate_per_user_per_minute": 30,
        "rate_per_agency_per_minute": 300,
    }
    limits.update(overrides)
    return limits


def _seed(db: Database, world: World, **limits: Any) -> dict[str, Any]:
    """One arrestee under an agreement with the given query limits."""
    with db.session() as s:
        activate(s, world, scope=default_scope(limits=_limits(**limits)))
        ana = data.person(s, "Alvarez", "Ana", sid="SID-3001")
        arrest = data.arrest(
            s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)]
        )
        return {"ana": ana.id, "arrest": arrest.id, "otn": arrest.otn}


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_one_character_name_is_refused_for_every_reader(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world, exact_identifiers_only=False, name_search=True)
    internal = client.get("/api/v1/persons", params={"name": " a "}, headers=world.auth("reader"))
    error = _error(internal, 422)
    assert error["field"] == "name"
    assert error["message"] == "a name search needs at least 2 characters"
    external = client.get(
        "/api/v1/persons", params={"name": "a", **PURPOSE}, headers=world.auth("ice")
    )
    assert _error(external, 422)["field"] == "name"


def test_every_wildcard_character_is_refused(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    for name in ("alv*", "alv%", "al_arez", "alv?"):
        response = client.get(
            "/api/v1/persons", params={"name": name}, headers=world.auth("reader")
        )
        error = _error(response, 422)
        assert error["field"] == "name", name
        assert "wildcards (* % _ ?) are not allowed" in error["message"]


def test_name_search_is_refused_under_exact_identifiers_only(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    ice = world.auth("ice")
    refused = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    error = _error(refused, 403)
    assert (error["code"], error["field"]) == ("query_shape_not_allowed", "name")
    assert "name search is not allowed" in error["message"]
    # The same person by an exact identifier is answered.
    found = client.get("/api/v1/persons", params={"sid": "SID-3001", **PURPOSE}, headers=ice)
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["items"]] == [ids["ana"]]


def test_name_search_is_refused_when_the_agreement_does_not_grant_it(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world, exact_identifiers_only=False, name_search=False)
    ice = world.auth("ice")
    refused = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    error = _error(refused, 403)
    assert (error["code"], error["field"]) == ("query_shape_not_allowed", "name")
    # Without exact-identifiers-only, a SID alone is answered.
    by_sid = client.get("/api/v1/persons", params={"sid": "SID-3001", **PURPOSE}, headers=ice)
    assert by_sid.status_code == 200, by_sid.text
    assert by_sid.json()["total"] == 1


def test_exact_identifiers_only_refuses_searches_without_one(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    ice = world.auth("ice")
    for path, params in (
        ("/api/v1/persons", {"birth_year": "1990"}),
        ("/api/v1/arrests", {"statute": "18 § 2701"}),
        ("/api/v1/arrests", {"state": "arraigned"}),
    ):
        error = _error(client.get(path, params={**params, **PURPOSE}, headers=ice), 403)
        assert error["code"] == "query_shape_not_allowed", params
        assert error["message"].startswith("your agreement allows exact identifiers only")
    found = client.get("/api/v1/arrests", params={"otn": ids["otn"], **PURPOSE}, headers=ice)
    assert found.status_code == 200, found.text
    assert [a["id"] for a in found.json()["items"]] == [ids["arrest"]]
    # Every refusal is in the audit log under the account that asked.
    with db.session() as s:
        refused = s.scalars(
            select(AuditEntry.action).where(
                AuditEntry.outcome == Outcome.REFUSED, AuditEntry.user_id == world.users["ice"]
            )
        ).all()
    assert sorted(refused) == ["GET /api/v1/arrests", "GET /api/v1/arrests", "GET /api/v1/persons"]


def test_arrest_limit_above_the_agreement_maximum_is_refused(
    client: TestClient, db: Database, world: World
) -> None:
    ids = _seed(db, world)
    params = {"otn": ids["otn"], **PURPOSE}
    too_many = client.get(
        "/api/v1/arrests", params={**params, "limit": 11}, headers=world.auth("ice")
    )
    error = _error(too_many, 422)
    assert error["field"] == "limit"
    assert error["message"] == "limit 11 exceeds the agreement's maximum of 10 results per query"
    at_max = client.get(
        "/api/v1/arrests", params={**params, "limit": 10}, headers=world.auth("ice")
    )
    assert at_max.status_code == 200 and at_max.json()["limit"] == 10


def test_arrest_search_without_criteria_names_them(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    error = _error(client.get("/api/v1/arrests", headers=world.auth("reader")), 422)
    assert error["field"] == "query"
    for criterion in ("otn", "incident_number", "docket_number", "statute", "state"):
        assert criterion in error["message"]
    # Paging alone is not a criterion either.
    paged = client.get("/api/v1/arrests", params={"offset": 5}, headers=world.auth("reader"))
    assert _error(paged, 422)["field"] == "query"

"""External reads under an agreement: scope, floor, black semantics, expiry, kill switch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from openpars.access import service
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.agreements import killswitch
from openpars.agreements.models import SuspensionTarget
from openpars.db import Database, utcnow
from openpars.errors import Forbidden, NotFound
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import Role
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import EXPIRES, activate
from tests.factories import World, add_user, city_voter

POLICE = "Philadelphia Police Department"
PURPOSE = {"purpose": "warrant-service"}
CONTEXT = ReadContext(purpose="warrant-service")


def seed(db: Database, world: World) -> dict[str, int]:
    """Ana is an arrestee once and a victim once; Vic is only ever a victim."""
    with db.session() as s:
        agreement = activate(s, world)
        agency = world.agencies[POLICE]
        ana = data.person(
            s, "Alvarez", "Ana", sid="SID-2001", place_of_birth="Oaxaca, MX", citizenship="MX"
        )
        vic = data.person(s, "Alvarez", "Victor", sid="SID-2002")
        juv = data.person(s, "Alvarez", "Junior", sid="SID-2003")
        sealed_p = data.person(s, "Alvarez", "Sealy", sid="SID-2004")
        a1 = data.arrest(
            s,
            agency_id=agency,
            people=[(ana, InvolvementRole.ARRESTEE), (vic, InvolvementRole.VICTIM)],
        )
        a2 = data.arrest(
            s,
            agency_id=agency,
            people=[(juv, InvolvementRole.ARRESTEE), (ana, InvolvementRole.VICTIM)],
            juvenile=frozenset({juv.id}),
        )
        a3 = data.arrest(
            s, agency_id=agency, people=[(sealed_p, InvolvementRole.ARRESTEE)], sealed=True
        )
        return {
            "agreement": agreement.id,
            "ana": ana.id,
            "vic": vic.id,
            "juv": juv.id,
            "sealed_person": sealed_p.id,
            "a1": a1.id,
            "a2": a2.id,
            "a3": a3.id,
        }


def test_only_arrestee_involvements_and_fields_in_scope(
    client: TestClient, db: Database, world: World
) -> None:
    ids = seed(db, world)
    ice = world.auth("ice")
    page = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [p["id"] for p in body["items"]] == [ids["ana"]]
    assert body["total"] == 1
    ana = body["items"][0]
    assert ana["birth_date"] == "1990"
    assert ana["phone"] == "nnn-nnn-nnnn"
    assert ana["place_of_birth"] is None and ana["citizenship"] is None
    assert ana["address"] is None
    detail = client.get(f"/api/v1/persons/{ids['ana']}", params=PURPOSE, headers=ice).json()
    assert [(i["arrest_id"], i["role"]) for i in detail["person"]["involvements"]] == [
        (ids["a1"], "arrestee")
    ]
    arrest = client.get(f"/api/v1/arrests/{ids['a1']}", params=PURPOSE, headers=ice).json()
    assert [i["role"] for i in arrest["arrest"]["involvements"]] == ["arrestee"]
    assert arrest["arrest"]["narrative"] is None
    assert arrest["arrest"]["charges"][0]["statute"] == "18 § 2701"
    assert arrest["arrest"]["arraignment"] is None
    assert arrest["arrest"]["bail_recommendations"] == []
    assert arrest["decision"]["agreement_id"] == ids["agreement"]


def _blocked_vs_missing(
    client: TestClient, headers: dict[str, str], path_blocked: str, path_missing: str
) -> None:
    blocked = client.get(path_blocked, params=PURPOSE, headers=headers)
    missing = client.get(path_missing, params=PURPOSE, headers=headers)
    assert blocked.status_code == missing.status_code == 404

    def strip(r):
        # Each refusal names its own audit entry: the next id either way, no hint of the record.
        error = {k: v for k, v in r.json()["error"].items() if k != "audit_entry"}
        return {**error, "message": error["message"].split(" id ")[0]}

    assert strip(blocked) == strip(missing)


def test_black_semantics(client: TestClient, db: Database, world: World) -> None:
    ids = seed(db, world)
    ice = world.auth("ice")
    _blocked_vs_missing(client, ice, f"/api/v1/persons/{ids['vic']}", "/api/v1/persons/987654")
    _blocked_vs_missing(client, ice, f"/api/v1/persons/{ids['juv']}", "/api/v1/persons/987655")
    _blocked_vs_missing(client, ice, f"/api/v1/arrests/{ids['a3']}", "/api/v1/arrests/987656")
    _blocked_vs_missing(client, ice, f"/api/v1/arrests/{ids['a2']}", "/api/v1/arrests/987657")
    victim = client.get("/api/v1/persons", params={"sid": "SID-2002", **PURPOSE}, headers=ice)
    nobody = client.get("/api/v1/persons", params={"sid": "SID-9999", **PURPOSE}, headers=ice)
    assert victim.json()["items"] == nobody.json()["items"] == []
    assert victim.json()["total"] == nobody.json()["total"] == 0


def test_expiry_boundary_to_the_microsecond(db: Database, world: World) -> None:
    seed(db, world)
    ice = world.principals["ice"]
    query = PersonQuery(sid="SID-2001")
    with db.session(external=True) as s:
        before = service.search_persons(
            s, principal=ice, query=query, context=CONTEXT, now=EXPIRES - timedelta(microseconds=1)
        )
    assert before.total == 1
    for at in (EXPIRES, EXPIRES + timedelta(microseconds=1)):
        with (
            db.session(external=True) as s,
            pytest.raises(Forbidden, match="no data-sharing agreement"),
        ):
            service.search_persons(s, principal=ice, query=query, context=CONTEXT, now=at)


def test_agency_without_agreement_gets_nothing(
    client: TestClient, db: Database, world: World
) -> None:
    seed(db, world)
    response = client.get(
        "/api/v1/persons", params={"sid": "SID-2001", **PURPOSE}, headers=world.auth("fbi")
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_agreement_in_force"


def test_kill_switch_takes_effect_at_once(client: TestClient, db: Database, world: World) -> None:
    ids = seed(db, world)
    params = {"sid": "SID-2001", **PURPOSE}
    assert (
        client.get("/api/v1/persons", params=params, headers=world.auth("ice")).json()["total"] == 1
    )
    with db.session() as s:
        # The city's own voter: the site administrator speaks for no stakeholder.
        voter = world.principals[city_voter(s, world)]
        suspension = killswitch.suspend(
            s,
            actor=voter,
            agreement_id=ids["agreement"],
            target=SuspensionTarget.ACCOUNT,
            target_id=world.users["ice"],
            reason="queries outside stated purpose",
        )
    refused = client.get("/api/v1/persons", params=params, headers=world.auth("ice"))
    assert refused.status_code == 403
    with db.session() as s:
        # Lifted by the stakeholder that imposed it (the city, whose voter suspended).
        killswitch.resume(s, actor=voter, suspension_id=suspension.id, reason="reviewed")
    assert (
        client.get("/api/v1/persons", params=params, headers=world.auth("ice")).status_code == 200
    )


def test_unnamed_sub_unit_is_not_admitted(db: Database, world: World) -> None:
    from openpars.identity import service as identity
    from openpars.identity.roles import AgencyKind, Role
    from openpars.identity.schemas import AgencyCreate, UserCreate

    with db.session() as s:
        parent = world.agencies["Immigration and Customs Enforcement"]
        named = identity.create_agency(
            s,
            actor=SYSTEM,
            data=AgencyCreate(
                name="ICE Philadelphia Field Office", kind=AgencyKind.EXTERNAL, parent_id=parent
            ),
        )
        other = identity.create_agency(
            s,
            actor=SYSTEM,
            data=AgencyCreate(
                name="ICE Enforcement and Removal Operations",
                kind=AgencyKind.EXTERNAL,
                parent_id=parent,
            ),
        )
        activate(s, world, all_units=False, grantee_unit_ids=[named.id])
        users = {}
        for name, unit in (("ice.fo", named.id), ("ice.ero", other.id)):
            user = identity.create_user(
                s,
                actor=SYSTEM,
                data=UserCreate(
                    username=name, display_name=name, agency_id=unit, roles=[Role.EXTERNAL_QUERY]
                ),
            )
            users[name] = identity.principal_for(s, user)
        agency = world.agencies[POLICE]
        p = data.person(s, "Brown", "Bea", sid="SID-3001")
        data.arrest(s, agency_id=agency, people=[(p, InvolvementRole.ARRESTEE)])
    query = PersonQuery(sid="SID-3001")
    with db.session(external=True) as s:
        assert (
            service.search_persons(s, principal=users["ice.fo"], query=query, context=CONTEXT).total
            == 1
        )
    with db.session(external=True) as s, pytest.raises(Forbidden):
        service.search_persons(s, principal=users["ice.ero"], query=query, context=CONTEXT)


def test_purpose_rules(client: TestClient, db: Database, world: World) -> None:
    seed(db, world)
    ice = world.auth("ice")
    base = {"sid": "SID-2001"}
    missing = client.get("/api/v1/persons", params=base, headers=ice)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "purpose"
    wrong = client.get(
        "/api/v1/persons", params={**base, "purpose": "immigration-enforcement"}, headers=ice
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "purpose_not_allowed"
    no_case = client.get(
        "/api/v1/persons", params={**base, "purpose": "criminal-investigation"}, headers=ice
    )
    assert no_case.status_code == 422 and no_case.json()["error"]["field"] == "case_number"
    ok = client.get(
        "/api/v1/persons",
        params={**base, "purpose": "criminal-investigation", "case_number": "DC-2025-014421"},
        headers=ice,
    )
    assert ok.status_code == 200


def test_query_shape_limits(client: TestClient, db: Database, world: World) -> None:
    seed(db, world)
    ice = world.auth("ice")
    wild = client.get("/api/v1/persons", params={"name": "alv%", **PURPOSE}, headers=ice)
    assert wild.status_code == 422 and wild.json()["error"]["field"] == "name"
    big = client.get(
        "/api/v1/persons", params={"name": "alvarez", "limit": 100, **PURPOSE}, headers=ice
    )
    assert big.status_code == 422 and "maximum of 25" in big.json()["error"]["message"]


def test_rate_limit_returns_429_with_retry(db: Database, world: World, client: TestClient) -> None:
    with db.session() as s:
        from tests.access.agreements import default_scope

        scope = default_scope(
            limits={
                "exact_identifiers_only": True,
                "max_results": 10,
                "rate_per_user_per_minute": 3,
                "rate_per_agency_per_minute": 100,
            }
        )
        activate(s, world, scope=scope)
    params = {"sid": "SID-0", **PURPOSE}
    codes = [
        client.get("/api/v1/persons", params=params, headers=world.auth("ice")).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    last = client.get("/api/v1/persons", params=params, headers=world.auth("ice"))
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1
    name = client.get(
        "/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=world.auth("ice")
    )
    assert name.status_code in (403, 429)


def test_agency_rate_limit_counts_every_account(
    db: Database, world: World, client: TestClient
) -> None:
    with db.session() as s:
        from tests.access.agreements import default_scope

        scope = default_scope(
            limits={
                "exact_identifiers_only": True,
                "max_results": 10,
                "rate_per_user_per_minute": 2,
                "rate_per_agency_per_minute": 2,
            }
        )
        activate(s, world, scope=scope)
        add_user(
            s, world, "ice.second", "Immigration and Customs Enforcement", [Role.EXTERNAL_QUERY]
        )
    params = {"sid": "SID-0", **PURPOSE}
    # Two accounts of one agency, one query each, then either of them: the agency is full.
    responses = [
        client.get("/api/v1/persons", params=params, headers=world.auth(user))
        for user in ("ice", "ice.second", "ice.second")
    ]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "your agency may make 2 queries per minute" in responses[-1].json()["error"]["message"]
    retry = float(responses[-1].headers["Retry-After"])
    assert 0 < retry <= 60


def test_missing_person_error_for_external_never_says_blocked(db: Database, world: World) -> None:
    ids = seed(db, world)
    with db.session(external=True) as s, pytest.raises(NotFound) as caught:
        service.get_person(
            s,
            principal=world.principals["ice"],
            person_id=ids["vic"],
            context=CONTEXT,
            now=utcnow(),
        )
    assert "victim" not in caught.value.message and "scope" not in caught.value.message

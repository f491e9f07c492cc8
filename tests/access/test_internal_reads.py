"""Internal reads: search and fetch through the enforcement point, sealing, totals, audit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.factories import World

POLICE = "Philadelphia Police Department"


def seed(db: Database, world: World) -> dict[str, int]:
    with db.session() as s:
        agency = world.agencies[POLICE]
        ana = data.person(s, "Muñoz", "Ana", sid="SID-1001")
        bob = data.person(s, "Smith", "Bob")
        sally = data.person(s, "Smithers", "Sally")
        hidden = data.person(s, "Sealson", "Sam")
        a1 = data.arrest(
            s,
            agency_id=agency,
            people=[(ana, InvolvementRole.ARRESTEE), (bob, InvolvementRole.VICTIM)],
        )
        a2 = data.arrest(s, agency_id=agency, people=[(sally, InvolvementRole.ARRESTEE)])
        a3 = data.arrest(
            s, agency_id=agency, people=[(hidden, InvolvementRole.ARRESTEE)], sealed=True
        )
        return {
            "ana": ana.id,
            "bob": bob.id,
            "sally": sally.id,
            "hidden": hidden.id,
            "a1": a1.id,
            "a2": a2.id,
            "a3": a3.id,
        }


def test_name_search_is_prefix_case_and_accent_insensitive(
    client: TestClient, db: Database, world: World
) -> None:
    ids = seed(db, world)
    body = client.get("/api/v1/persons", params={"name": "MUNOZ"}, headers=world.auth("reader"))
    assert body.status_code == 200, body.text
    assert [p["id"] for p in body.json()["items"]] == [ids["ana"]]
    body = client.get("/api/v1/persons", params={"name": "smith"}, headers=world.auth("reader"))
    assert [p["id"] for p in body.json()["items"]] == [ids["bob"], ids["sally"]]
    assert body.json()["total"] == 2
    body = client.get("/api/v1/persons", params={"name": "smith b"}, headers=world.auth("reader"))
    assert [p["id"] for p in body.json()["items"]] == [ids["bob"]]


def test_exact_identifier_search(client: TestClient, db: Database, world: World) -> None:
    ids = seed(db, world)
    body = client.get("/api/v1/persons", params={"sid": "SID-1001"}, headers=world.auth("reader"))
    assert [p["id"] for p in body.json()["items"]] == [ids["ana"]]
    assert body.json()["items"][0]["place_of_birth"] == "Philadelphia, PA"


def test_sealed_records_vanish_from_ordinary_views(
    client: TestClient, db: Database, world: World
) -> None:
    ids = seed(db, world)
    reader = world.auth("reader")
    missing = client.get("/api/v1/arrests/999999", headers=reader)
    sealed = client.get(f"/api/v1/arrests/{ids['a3']}", headers=reader)
    assert sealed.status_code == missing.status_code == 404
    assert sealed.json()["error"]["code"] == missing.json()["error"]["code"]
    assert (
        client.get("/api/v1/persons", params={"name": "sealson"}, headers=reader).json()["total"]
        == 0
    )
    # The clerk holds sealed_access and sees it.
    clerk = client.get(f"/api/v1/arrests/{ids['a3']}", headers=world.auth("clerk"))
    assert clerk.status_code == 200
    assert clerk.json()["arrest"]["sealed"] is True


def test_arrest_detail_and_person_involvements(
    client: TestClient, db: Database, world: World
) -> None:
    ids = seed(db, world)
    arrest = client.get(f"/api/v1/arrests/{ids['a1']}", headers=world.auth("reader")).json()
    roles = sorted(i["role"] for i in arrest["arrest"]["involvements"])
    assert roles == ["arrestee", "victim"]
    assert arrest["arrest"]["charges"][0]["statute"] == "18 § 2701"
    person = client.get(f"/api/v1/persons/{ids['bob']}", headers=world.auth("reader")).json()
    assert [i["role"] for i in person["person"]["involvements"]] == ["victim"]


def test_arrest_search_and_pagination(client: TestClient, db: Database, world: World) -> None:
    seed(db, world)
    params = {"statute": "18 § 2701", "limit": 1}
    first = client.get("/api/v1/arrests", params=params, headers=world.auth("reader")).json()
    assert first["total"] == 2 and len(first["items"]) == 1
    second = client.get(
        "/api/v1/arrests", params={**params, "offset": 1}, headers=world.auth("reader")
    ).json()
    assert first["items"][0]["id"] != second["items"][0]["id"]


def test_every_read_is_audited_with_returned_ids(
    client: TestClient, db: Database, world: World
) -> None:
    ids = seed(db, world)
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    client.get("/api/v1/persons", params={"name": "smith"}, headers=world.auth("reader"))
    client.get("/api/v1/arrests/999999", headers=world.auth("reader"))
    with db.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()[before:]
    assert [(r.kind.value, r.action) for r in rows] == [
        ("search", "person.search"),
        ("refused", "GET /api/v1/arrests/999999"),
    ]
    assert ids["bob"] > 0


def test_search_needs_a_criterion_and_no_wildcards(client: TestClient, world: World) -> None:
    empty = client.get("/api/v1/persons", headers=world.auth("reader"))
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "query"
    wild = client.get("/api/v1/persons", params={"name": "sm*"}, headers=world.auth("reader"))
    assert wild.status_code == 422 and wild.json()["error"]["field"] == "name"


def test_alias_matches_merge_in_name_order_across_pages(
    client: TestClient, db: Database, world: World
) -> None:
    from openpars.records.models import PersonAlias
    from openpars.records.validation import name_key

    with db.session() as s:
        agency = world.agencies[POLICE]
        own = data.person(s, "Rossi", "Bruno")
        aliased = data.person(s, "Abbott", "Carla")
        s.add(
            PersonAlias(
                person_id=aliased.id,
                family_name="Rossini",
                given_name="Carla",
                name_key=name_key("Rossini", "Carla"),
            )
        )
        later = data.person(s, "Zeller", "Dora")
        s.add(
            PersonAlias(
                person_id=later.id,
                family_name="Rossa",
                given_name="Dora",
                name_key=name_key("Rossa", "Dora"),
            )
        )
        data.arrest(
            s,
            agency_id=agency,
            people=[
                (own, InvolvementRole.ARRESTEE),
                (aliased, InvolvementRole.WITNESS),
                (later, InvolvementRole.VICTIM),
            ],
        )
        ids = [own.id, aliased.id, later.id]
    reader = world.auth("reader")
    full = client.get("/api/v1/persons", params={"name": "ross"}, headers=reader).json()
    # Own-name matches first (Rossi), then alias-only matches by their own names (Abbott, Zeller).
    assert [p["id"] for p in full["items"]] == ids
    assert full["total"] == 3 and full["total_is_exact"]
    pages = [
        client.get(
            "/api/v1/persons", params={"name": "ross", "limit": 1, "offset": n}, headers=reader
        ).json()["items"][0]["id"]
        for n in range(3)
    ]
    assert pages == ids


def test_totals_hold_on_short_pages_and_past_the_end(
    client: TestClient, db: Database, world: World
) -> None:
    seed(db, world)
    reader = world.auth("reader")
    # (params, items, total, total_is_exact, has_more): a full page without count=true says
    # "at least" (one more than it shows); the last page, a count, or a page past the end is exact.
    for params, items, total, exact, more in (
        ({"name": "smith"}, 2, 2, True, False),
        ({"name": "smith", "limit": 1}, 1, 2, False, True),
        ({"name": "smith", "limit": 1, "count": "true"}, 1, 2, True, True),
        ({"name": "smith", "limit": 2}, 2, 2, True, False),
        ({"name": "smith", "limit": 1, "offset": 1}, 1, 2, True, False),
        ({"name": "smith", "offset": 5}, 0, 2, True, False),
        ({"sid": "SID-1001", "offset": 3}, 0, 1, True, False),
    ):
        body = client.get("/api/v1/persons", params=params, headers=reader).json()
        got = (len(body["items"]), body["total"], body["total_is_exact"], body["has_more"])
        assert got == (items, total, exact, more), params
    past = client.get(
        "/api/v1/arrests", params={"statute": "18 § 2701", "offset": 9}, headers=reader
    ).json()
    assert (past["items"], past["total"]) == ([], 2)
    first = client.get(
        "/api/v1/arrests", params={"statute": "18 § 2701", "limit": 1}, headers=reader
    ).json()
    assert (len(first["items"]), first["total"], first["has_more"]) == (1, 2, True)
    assert not first["total_is_exact"]
    counted = client.get(
        "/api/v1/arrests",
        params={"statute": "18 § 2701", "limit": 1, "count": "true"},
        headers=reader,
    ).json()
    assert (counted["total"], counted["total_is_exact"]) == (2, True)

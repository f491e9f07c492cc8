"""Arrest parts an agreement grants or withholds whole, and the floor's juvenile rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from openpars.agreements.floor import SiteFloor
from openpars.db import Database
from openpars.records.enums import BailType, CustodyOutcome, InvolvementRole
from openpars.records.models import Arraignment, CustodyEvent
from tests.access import data
from tests.access.agreements import activate, default_scope
from tests.agreements.helpers import decided_floor
from tests.factories import World

POLICE = "Philadelphia Police Department"
PURPOSE = {"purpose": "warrant-service"}


def _arraigned_and_released(db: Database, world: World, arrest_fields: dict[str, str]) -> int:
    """An arrest with a charge, an arraignment and a release, under the given arrest fields."""
    with db.session() as s:
        activate(s, world, scope=default_scope(arrest_fields=arrest_fields))
        ana = data.person(s, "Alvarez", "Ana", sid="SID-4001")
        arrest = data.arrest(
            s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)]
        )
        s.add(
            Arraignment(
                arrest_id=arrest.id,
                arraigned_at=datetime(2025, 3, 5, 9, 30, tzinfo=UTC),
                magistrate="Bail Commissioner Ortiz",
                bail_type=BailType.MONETARY,
                bail_amount=Decimal("2500.00"),
                preliminary_hearing_date=date(2025, 3, 19),
                docket_number="MC-51-CR-0001234-2025",
            )
        )
        s.add(
            CustodyEvent(
                arrest_id=arrest.id,
                outcome=CustodyOutcome.RELEASED,
                at=datetime(2025, 3, 5, 14, 0, tzinfo=UTC),
                facility="Curran-Fromhold Correctional Facility",
            )
        )
        s.flush()
        return arrest.id


def _arrest(client: TestClient, world: World, user: str, arrest_id: int) -> dict[str, Any]:
    params = PURPOSE if user == "ice" else {}
    response = client.get(f"/api/v1/arrests/{arrest_id}", params=params, headers=world.auth(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["arrest"]
    return body


def test_granted_custody_and_arraignment_are_returned_withheld_charges_are_not(
    client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _arraigned_and_released(
        db,
        world,
        {"otn": "visible", "state": "visible", "arraignment": "visible", "custody": "visible"},
    )
    internal = _arrest(client, world, "reader", arrest_id)
    assert len(internal["charges"]) == 1
    external = _arrest(client, world, "ice", arrest_id)
    # The agreement does not name charges, so the stored charge never leaves the site.
    assert external["charges"] == []
    assert external["arraignment"]["docket_number"] == "MC-51-CR-0001234-2025"
    assert external["arraignment"]["bail_type"] == "monetary"
    assert external["custody"] == internal["custody"]
    assert external["custody"]["outcome"] == "released"
    assert external["custody"]["facility"] == "Curran-Fromhold Correctional Facility"


def test_nullified_custody_is_null_and_unnamed_custody_absent(
    client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _arraigned_and_released(
        db, world, {"otn": "visible", "charges": "visible", "custody": "nullify"}
    )
    external = _arrest(client, world, "ice", arrest_id)
    assert external["custody"] is None and external["arraignment"] is None
    assert [c["statute"] for c in external["charges"]] == ["18 § 2701"]
    assert _arrest(client, world, "reader", arrest_id)["custody"]["outcome"] == "released"


def test_juveniles_are_shown_only_when_floor_and_agreement_both_allow(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as s:
        decided_floor(s, SiteFloor(forbid_juveniles=False), "juvenile pilot approved by the court")
        activate(s, world, scope=default_scope(exclude_juveniles=False))
        junior = data.person(s, "Alvarez", "Junior", sid="SID-4002")
        data.arrest(
            s,
            agency_id=world.agencies[POLICE],
            people=[(junior, InvolvementRole.ARRESTEE)],
            juvenile=frozenset({junior.id}),
        )
        junior_id = junior.id
    response = client.get(
        "/api/v1/persons", params={"sid": "SID-4002", **PURPOSE}, headers=world.auth("ice")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["id"] for p in body["items"]] == [junior_id]
    assert not any(c.startswith("juvenile involvements") for c in body["decision"]["clauses"])

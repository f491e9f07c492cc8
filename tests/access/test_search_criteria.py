"""Every search criterion through the prepared statements: values bound and typed per dialect."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi.testclient import TestClient

from openpars.db import Database
from openpars.records.enums import ArrestState, InvolvementRole
from openpars.records.models import Arrest, Person
from tests.access import data
from tests.factories import World

POLICE = "Philadelphia Police Department"


def seed(db: Database, world: World) -> dict[str, int]:
    with db.session() as s:
        agency = world.agencies[POLICE]
        early = data.person(s, "Early", "Eve", birth_date=date(1980, 1, 2), sid="SID-1")
        late = data.person(s, "Late", "Lou", birth_date=date(2001, 12, 31), sid="SID-2")
        late_fbi = s.get(Person, late.id)
        assert late_fbi is not None
        late_fbi.fbi_number = "123456AB7"
        first = data.arrest(
            s,
            agency_id=agency,
            people=[(early, InvolvementRole.ARRESTEE)],
            arrested_at=datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            state=ArrestState.ENTERED,
        )
        second = data.arrest(
            s,
            agency_id=agency,
            people=[(late, InvolvementRole.ARRESTEE)],
            arrested_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
        )
        s.flush()
        return {"early": early.id, "late": late.id, "first": first.id, "second": second.id}


def _ids(client: TestClient, world: World, path: str, params: dict[str, str]) -> list[int]:
    response = client.get(path, params=params, headers=world.auth("reader"))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_person_criteria(client: TestClient, db: Database, world: World) -> None:
    ids = seed(db, world)
    for params, expected in (
        ({"birth_date": "1980-01-02"}, [ids["early"]]),
        ({"birth_date": "1980-01-03"}, []),
        ({"sid": "SID-2"}, [ids["late"]]),
        ({"fbi_number": "123456AB7"}, [ids["late"]]),
        ({"name": "late", "birth_date": "2001-12-31"}, [ids["late"]]),
        ({"name": "late", "sid": "SID-1"}, []),
    ):
        assert _ids(client, world, "/api/v1/persons", params) == expected, params
    body = client.get(
        "/api/v1/persons", params={"sid": "SID-1"}, headers=world.auth("reader")
    ).json()
    assert body["items"][0]["birth_date"] == "1980-01-02"


def test_arrest_criteria(client: TestClient, db: Database, world: World) -> None:
    ids = seed(db, world)
    with db.session() as s:
        first = s.get(Arrest, ids["first"])
        assert first is not None
        otn, incident = first.otn, first.incident_number
    newest_first = [ids["second"], ids["first"]]
    for params, expected in (
        ({"otn": otn}, [ids["first"]]),
        ({"incident_number": incident}, [ids["first"]]),
        ({"state": ArrestState.ENTERED.value}, [ids["first"]]),
        ({"statute": "18 § 2701"}, newest_first),
        ({"statute": "18 § 3502"}, []),
        # The range is [from, to): a microsecond either side of the first arrest decides.
        ({"arrested_from": "2024-01-01T00:00:00.000001+00:00"}, newest_first),
        ({"arrested_from": "2024-01-01T00:00:00.000002+00:00"}, [ids["second"]]),
        ({"arrested_to": "2024-01-01T00:00:00.000001+00:00"}, []),
        ({"arrested_to": "2024-01-01T00:00:00.000002+00:00"}, [ids["first"]]),
        # Another offset names the same instant.
        ({"arrested_from": "2025-06-01T08:00:00-04:00"}, [ids["second"]]),
    ):
        assert _ids(client, world, "/api/v1/arrests", params) == expected, params
    body = client.get("/api/v1/arrests", params={"otn": otn}, headers=world.auth("reader")).json()
    item = body["items"][0]
    assert item["state"] == "entered" and item["sealed"] is False
    assert datetime.fromisoformat(item["arrested_at"]) == datetime(
        2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC
    )

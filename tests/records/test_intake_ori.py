"""The arresting ORI is the filing agency's own or one of its sub-units' (``parent_id``).

As the issue found it: Philadelphia's booking account filed arrests under an unregistered ORI
and under another agency's ORI.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpars.db import Database
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import API, add_user, row_counts, submit


def _unit(db: Database, world: World, name: str, ori: str, parent: str) -> None:
    with db.session() as session:
        agency = identity.create_agency(
            session,
            actor=SYSTEM,
            data=AgencyCreate(
                name=name, kind=AgencyKind.POLICE, ori=ori, parent_id=world.agencies[parent]
            ),
        )
        world.agencies[name] = agency.id


def _refusal(response: Any, ori: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "ori_not_yours" and error["field"] == "ori"
    assert f"ori {ori} is not" in error["message"]
    return dict(error)


@pytest.mark.parametrize("ori", ["PAXXX0000", "PA051013A", "DCFBI0000"])
def test_intake_refuses_an_ori_that_is_not_its_own(
    client: TestClient, world: World, db: Database, ori: str
) -> None:
    before = row_counts(db)
    error = _refusal(submit(client, world, arrest_payload(ori=ori)), ori)
    # Unregistered or another agency's: one answer, which names only the caller's own ORIs.
    assert error["message"].replace(ori, "X") == (
        "ori X is not the ORI of your agency or of one of its sub-units (yours: PAPEP0000); "
        "an arrest is filed under the ORI of the unit that made it"
    )
    assert row_counts(db) == before


def test_sub_units_file_under_their_own_ori_and_the_parent_under_theirs(
    client: TestClient, world: World, db: Database
) -> None:
    _unit(db, world, "PPD 22nd District", "PAPEP2200", "Philadelphia Police Department")
    _unit(db, world, "PPD 22nd District Tactical", "PAPEP2201", "PPD 22nd District")
    add_user(db, world, "district", "PPD 22nd District", [Role.INTAKE])
    # The parent files under itself, a sub-unit and a sub-unit's sub-unit.
    for ori in ("PAPEP0000", "PAPEP2200", "PAPEP2201"):
        response = submit(client, world, arrest_payload(ori=ori))
        assert response.status_code == 201, response.text
    # A sub-unit files under itself and below, never under its parent.
    assert submit(client, world, arrest_payload(ori="PAPEP2201"), "district").status_code == 201
    _refusal(submit(client, world, arrest_payload(ori="PAPEP0000"), "district"), "PAPEP0000")


def test_a_batch_refuses_only_the_foreign_ori(client: TestClient, world: World) -> None:
    items = [arrest_payload(), arrest_payload(ori="PA051013A"), arrest_payload()]
    response = client.post(f"{API}/arrests/batch", json=items, headers=world.auth("intake"))
    assert response.status_code == 200, response.text
    first, refused, last = response.json()["items"]
    assert "arrest_id" in first and "arrest_id" in last
    assert refused["refused"] is True and refused["code"] == "ori_not_yours"
    assert refused["status"] == 422 and refused["field"] == "ori"

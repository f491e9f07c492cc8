"""Arrest times have a sane window: year 1 and 1900 are refused with a 422, never a 500.

The new user who typed ``0001-01-01`` got a 500 (converting year 1 to the site's time zone
overflows), and ``openpars import`` lost the whole file to that one line.
"""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import API, arraignment, row_counts, step, submit

TOO_EARLY = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T23:59:59-12:00",
    "1900-06-01T12:00:00Z",
    "1949-12-31T23:59:59-05:00",  # a second before 1950 in Philadelphia
]


@pytest.mark.parametrize("arrested_at", TOO_EARLY)
def test_intake_refuses_an_arrest_before_the_window(
    client: TestClient, world: World, db: Database, arrested_at: str
) -> None:
    before = row_counts(db)
    response = submit(client, world, arrest_payload(arrested_at=arrested_at))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "arrested_at"
    assert "1950-01-01" in error["message"]
    assert row_counts(db) == before


def test_the_window_opens_at_midnight_of_the_earliest_day(client: TestClient, world: World) -> None:
    payload = arrest_payload(arrested_at="1950-01-01T00:00:00-05:00")
    for involvement in payload["involvements"]:
        involvement["person"]["birth_date"] = "1920-01-01"
    response = submit(client, world, payload)
    assert response.status_code == 201, response.text


def test_the_earliest_day_is_configurable(settings: Settings, db: Database, world: World) -> None:
    older = settings.model_copy(update={"earliest_arrest_date": date(1900, 1, 1)})
    payload = arrest_payload(arrested_at="1920-06-01T12:00:00Z")
    for involvement in payload["involvements"]:
        involvement["person"]["birth_date"] = "1890-01-01"
    with TestClient(create_app(older, database=db)) as client:
        assert submit(client, world, payload).status_code == 201
        refused = submit(client, world, arrest_payload(arrested_at="1899-12-31T12:00:00Z"))
    assert refused.status_code == 422
    assert "1900-01-01" in refused.json()["error"]["message"]


def test_an_amendment_to_year_one_is_refused(client: TestClient, world: World) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    for value in ("0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z"):
        response = client.patch(
            f"{API}/arrests/{arrest_id}",
            json={"reason": "typo in the year", "arrested_at": value},
            headers=world.auth("intake"),
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "arrested_at"


def test_a_workflow_step_in_year_one_is_a_422(client: TestClient, world: World) -> None:
    arrest_id = submit(client, world, arrest_payload()).json()["arrest_id"]
    assert step(client, world, arrest_id, "charging-decision", {"outcome": "approved"}, "charging")
    body = arraignment(arraigned_at="0001-01-01T00:00:00Z")
    response = step(client, world, arrest_id, "arraignment", body, "court")
    assert response.status_code == 422, response.text


def test_a_batch_refuses_only_the_year_one_arrest(client: TestClient, world: World) -> None:
    items = [arrest_payload(), arrest_payload(arrested_at="0001-01-01T00:00:00Z"), arrest_payload()]
    response = client.post(f"{API}/arrests/batch", json=items, headers=world.auth("intake"))
    assert response.status_code == 200, response.text
    first, refused, last = response.json()["items"]
    assert "arrest_id" in first and "arrest_id" in last
    assert refused["refused"] is True and refused["status"] == 422
    assert refused["field"] == "arrested_at"

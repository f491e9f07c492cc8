"""Issue 10 item 11: integers past their column are a 422 naming the field, never a 500.

Tried as the issue did: 99999999999999999999 in a path, 27353281584665628672 as an offset,
99999999999999999999999 as an id in a body, and, on PostgreSQL's INTEGER, 2147483648.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import Database
from openpars.identity.roles import Role
from openpars.ranges import INT32_MAX
from tests.factories import World, build_world
from tests.records.factories import arrest_payload
from tests.records.helpers import API, add_user

TOO_BIG = ["2147483648", "99999999999999999999", "-1", "0"]

# (user, method, path with {} for the number, parameter named in the error)
PATHS: list[tuple[str, str, str, str]] = [
    ("reader", "GET", "/arrests/{}", "arrest_id"),
    ("reader", "GET", "/persons/{}", "person_id"),
    ("reader", "GET", "/arrests/{}/history", "arrest_id"),
    ("reader", "GET", "/persons/{}/history", "person_id"),
    ("agreements", "GET", "/agreements/{}", "agreement_id"),
    ("agreements", "GET", "/agreements/{}/timeline", "agreement_id"),
    ("agreements", "GET", "/agreements/{}/suspensions", "agreement_id"),
    ("agreements", "GET", "/agreements/{}/governance-timeline", "agreement_id"),
    ("agreements", "GET", "/proposals/{}", "proposal_id"),
    ("agreements", "GET", "/proposals/{}/votes", "proposal_id"),
    ("admin", "DELETE", "/tokens/{}", "token_id"),
    ("reader", "GET", "/agencies?offset={}", "offset"),
    ("agreements", "GET", "/agreements?offset={}", "offset"),
    ("agreements", "GET", "/agreements?grantee_agency_id={}", "grantee_agency_id"),
    ("agreements", "GET", "/proposals?agreement_id={}", "agreement_id"),
    ("agreements", "GET", "/proposals?offset={}", "offset"),
    ("agreements", "GET", "/renewal-notices?stakeholder_id={}", "stakeholder_id"),
    ("agreements", "GET", "/keys?agency_id={}", "agency_id"),
]


@pytest.mark.parametrize(("user", "method", "path", "field"), PATHS)
def test_out_of_range_parameter_is_422_naming_it(
    client: TestClient, world: World, user: str, method: str, path: str, field: str
) -> None:
    for number in TOO_BIG:
        if field == "offset" and number == "0":
            continue  # offset 0 is the first page
        response = client.request(method, API + path.format(number), headers=world.auth(user))
        assert response.status_code == 422, (number, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_input", field)
    if "?" not in path:
        # In range but unknown: still the ordinary 404.
        unknown = client.request(method, API + path.format(INT32_MAX), headers=world.auth(user))
        assert unknown.status_code == 404, unknown.text


def test_audit_numbers_are_bounded_by_bigint(
    client: TestClient, world: World, db: Database
) -> None:
    add_user(db, world, "auditor", "City of Philadelphia", [Role.AUDITOR])
    huge = "99999999999999999999"  # past 2**63 - 1
    for path, field in [
        (f"/audit/receipts/{huge}", "entry_id"),
        (f"/audit/entries?after_id={huge}", "after_id"),
        (f"/audit/proof/inclusion?index={huge}&size=1", "index"),
        (f"/audit/proof/consistency?first=1&second={huge}", "second"),
    ]:
        response = client.get(API + path, headers=world.auth("auditor"))
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["field"] == field


BODIES: list[tuple[str, str, str, Any, str]] = [
    ("admin", "POST", "/users",
     {"username": "x1", "display_name": "X", "agency_id": 10**23, "roles": ["reader"]},
     "agency_id"),
    ("admin", "POST", "/agencies",
     {"name": "Unit", "kind": "police", "parent_id": 2147483648}, "parent_id"),
    ("agreements", "POST", "/proposals",
     {"agreement_id": 10**23, "action": "activate", "summary": "s",
      "deadline": "2030-01-01T00:00:00Z"}, "agreement_id"),
    ("agreements", "POST", "/proposals",
     {"action": "board", "summary": "s", "deadline": "2030-01-01T00:00:00Z",
      "board": {"members": [1, 2147483648], "quorum": 1}}, "board.members.1"),
]  # fmt: skip


@pytest.mark.parametrize(("user", "method", "path", "body", "field"), BODIES)
def test_out_of_range_id_in_a_body_is_422_naming_it(
    client: TestClient, world: World, user: str, method: str, path: str, body: Any, field: str
) -> None:
    response = client.request(method, API + path, json=body, headers=world.auth(user))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_person_id_past_the_column_in_an_arrest(client: TestClient, world: World) -> None:
    payload = arrest_payload()
    payload["involvements"][0] = {"role": "arrestee", "person_id": 99999999999999999999999}
    response = client.post(f"{API}/arrests", json=payload, headers=world.auth("intake"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "involvements.0.person_id"


def test_console_show_refuses_an_id_past_the_column(fresh_db: Database) -> None:
    """At the console the same id was an OverflowError traceback."""
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as session:
        build_world(session)
    for noun in ("arrest", "person"):
        result = CliRunner().invoke(
            app, ["show", noun, "99999999999999999999", "--as", "reader", "--db", url]
        )
        assert result.exit_code == 2, result.output
        assert "2147483647" in result.output
        unknown = CliRunner().invoke(
            app, ["show", noun, str(INT32_MAX), "--as", "reader", "--db", url]
        )
        assert unknown.exit_code == 1
        assert f"no {noun} with id {INT32_MAX}" in unknown.stderr


def test_search_instant_without_a_utc_form_is_422(client: TestClient, world: World) -> None:
    """0001-01-01T00:00:00+14:00 is before year 1 in UTC: it was an OverflowError (500)."""
    response = client.get(
        f"{API}/arrests",
        params={
            "arrested_from": "0001-01-01T00:00:00+14:00",
            "arrested_to": "2025-01-01T00:00:00Z",
        },
        headers=world.auth("reader"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "arrested_from"

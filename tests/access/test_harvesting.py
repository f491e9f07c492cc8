"""Harvesting (issue 10, item 5): an outside agency finds people, it does not list them.

An external search needs a selective criterion and reaches at most the agreement's
max_results rows per query, offsets included; the console applies exactly the API's checks.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from openpars.web.app import create_app
from tests.access import data
from tests.access.agreements import activate
from tests.factories import World, build_world

POLICE = "Philadelphia Police Department"
PURPOSE = {"purpose": "warrant-service"}
runner = CliRunner()


def _seed(db: Database, world: World) -> dict[str, Any]:
    with db.session() as s:
        activate(s, world)
        ana = data.person(s, "Alvarez", "Ana", sid="SID-4001")
        arrest = data.arrest(
            s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)]
        )
        return {"ana": ana.id, "arrest": arrest.id, "otn": arrest.otn}


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_an_outside_agency_cannot_list_by_date_state_statute_or_birth_year(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    ice = world.auth("ice")
    for path, params in (
        ("/api/v1/arrests", {"arrested_from": "2025-01-01T00:00:00Z"}),
        ("/api/v1/arrests", {"arrested_to": "2026-01-01T00:00:00Z"}),
        ("/api/v1/arrests", {"state": "arraigned"}),
        ("/api/v1/arrests", {"statute": "18 § 2701", "state": "arraigned"}),
        ("/api/v1/persons", {"birth_year": "1990"}),
        # A "name" without two letters selects nobody in particular.
        ("/api/v1/persons", {"name": "a1", "birth_year": "1990"}),
    ):
        error = _error(client.get(path, params={**params, **PURPOSE}, headers=ice), 403)
        assert (error["code"], error["field"]) == ("query_shape_not_allowed", "query"), params
        assert "must be selective" in error["message"]
    # Internal readers may still list by state.
    listed = client.get(
        "/api/v1/arrests", params={"state": "arraigned"}, headers=world.auth("reader")
    )
    assert listed.status_code == 200, listed.text


def test_selective_criteria_are_answered(client: TestClient, db: Database, world: World) -> None:
    ids = _seed(db, world)
    ice = world.auth("ice")
    for path, params, key in (
        ("/api/v1/persons", {"name": "al"}, "ana"),
        ("/api/v1/persons", {"sid": "SID-4001"}, "ana"),
        ("/api/v1/arrests", {"otn": ids["otn"], "state": "arraigned"}, "arrest"),
    ):
        response = client.get(path, params={**params, **PURPOSE}, headers=ice)
        assert response.status_code == 200, response.text
        assert [i["id"] for i in response.json()["items"]] == [ids[key]], params


def test_offsets_reach_at_most_max_results_rows(
    client: TestClient, db: Database, world: World
) -> None:
    _seed(db, world)
    ice = world.auth("ice")
    base = {"name": "alvarez", **PURPOSE}
    for window in ({"offset": "10"}, {"offset": "5", "limit": "21"}, {"offset": "100000"}):
        error = _error(client.get("/api/v1/persons", params={**base, **window}, headers=ice), 422)
        assert error["field"] == "offset", window
        assert "maximum of 25 results per query" in error["message"]
    allowed = client.get(
        "/api/v1/persons", params={**base, "offset": "5", "limit": "20"}, headers=ice
    )
    assert allowed.status_code == 200, allowed.text
    # Internal readers keep offsets up to 100,000.
    reader = world.auth("reader")
    deep = client.get(
        "/api/v1/persons", params={"name": "alvarez", "offset": "100000"}, headers=reader
    )
    assert deep.status_code == 200, deep.text
    too_deep = client.get(
        "/api/v1/persons", params={"name": "alvarez", "offset": "100001"}, headers=reader
    )
    assert _error(too_deep, 422)["field"] == "offset"


def test_page_bounds_are_one_rule_for_the_api_and_the_console(
    fresh_db: Database, settings: Settings
) -> None:
    """`--limit -2` once returned 167 arrests at the console, above max_results 25."""
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        ana = data.person(s, "Alvarez", "Ana", sid="SID-4001")
        for _ in range(3):
            data.arrest(
                s, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)]
            )
    cases = (
        ("reader", {"state": "arraigned", "limit": "-2"}, "limit"),
        ("reader", {"state": "arraigned", "limit": "501"}, "limit"),
        ("reader", {"state": "arraigned", "offset": "-1"}, "offset"),
        ("ice", {"statute": "18 § 2701", "limit": "-2"}, "limit"),
        ("ice", {"state": "arraigned"}, "query"),
        ("ice", {"otn": "N0000001-1", "offset": "-1"}, "offset"),
        ("ice", {"otn": "N0000001-1", "offset": "20", "limit": "10"}, "offset"),
    )
    with TestClient(create_app(settings, database=fresh_db)) as client:
        for user, params, field in cases:
            external = {"purpose": "warrant-service"} if user == "ice" else {}
            api = client.get(
                "/api/v1/arrests", params={**params, **external}, headers=world.auth(user)
            )
            assert api.status_code in (403, 422), (user, params, api.text)
            error = api.json()["error"]
            assert error["field"] == field, (user, params, error)
            argv = ["search", "arrests", "--as", user, "--db", url]
            for name, value in {**params, **external}.items():
                argv += [f"--{name.replace('_', '-')}", value]
            console = runner.invoke(app, argv)
            assert console.exit_code == 1, (argv, console.output)
            assert console.stderr.strip() == f"error: {error['message']} (field: {field})", argv


def test_arrest_time_bounds_are_searchable_at_the_console_as_over_the_api(
    fresh_db: Database, settings: Settings
) -> None:
    """The API's arrested_from / arrested_to are console options too, under the same rules:
    the same arrests for a reader, a date range alone refused to an outside agency, and an
    instant without its zone refused naming the option's field."""
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    seeded = _seed(fresh_db, world)
    window = {"arrested_from": "2000-01-01T00:00:00Z", "arrested_to": "2100-01-01T00:00:00Z"}

    def console(user: str, params: dict[str, str]) -> Any:
        argv = ["search", "arrests", "--as", user, "--db", url, "--json"]
        for name, value in params.items():
            argv += [f"--{name.replace('_', '-')}", value]
        return runner.invoke(app, argv)

    with TestClient(create_app(settings, database=fresh_db)) as client:
        api = client.get("/api/v1/arrests", params=window, headers=world.auth("reader"))
        assert api.status_code == 200, api.text
        found = console("reader", window)
        assert found.exit_code == 0, found.output
        ids = [a["id"] for a in api.json()["items"]]
        assert seeded["arrest"] in ids
        assert '"id":' in found.stdout
        assert ids == [a["id"] for a in json.loads(found.stdout)["items"]]
        refused = client.get(
            "/api/v1/arrests", params={**window, **PURPOSE}, headers=world.auth("ice")
        )
        error = _error(refused, 403)
        outside = console("ice", {**window, **PURPOSE})
        assert outside.exit_code == 1
        assert outside.stderr.strip() == f"error: {error['message']} (field: query)"
    naive = console("reader", {"arrested_from": "2000-01-01T00:00:00"})
    assert naive.exit_code == 1
    assert "(field: arrested_from)" in naive.stderr

"""External requests really run as the external database role, at the API and the console.

The site is a real database whose commits are real, served by the real app (and the real
console): the external engine logs in as ``<database>_external``, as a deployment does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from openpars.access import enforcement, service
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.agreements.floor import SiteFloor
from openpars.agreements.grants import Grant
from openpars.cli import app as cli_app
from openpars.config import Settings
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from openpars.web.app import create_app
from tests.access import data
from tests.access.agreements import activate
from tests.conftest import BACKEND
from tests.factories import World, build_world

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="database roles and row-level security are PostgreSQL's"
)

PURPOSE = {"purpose": "warrant-service"}
POLICE = "Philadelphia Police Department"

# Records which login wrote each audit entry, from inside the writing transaction.
WHO_WROTE = [
    "CREATE TABLE who_wrote (login name, acting name, action text)",
    "GRANT INSERT ON who_wrote TO PUBLIC",
    "CREATE FUNCTION note_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO who_wrote VALUES (session_user, current_user, NEW.action); RETURN NULL; END $$",
    "CREATE TRIGGER note_writer AFTER INSERT ON audit_entries FOR EACH ROW "
    "EXECUTE FUNCTION note_writer()",
]


@pytest.fixture
def site(
    fresh_db: Database, settings: Settings
) -> Iterator[tuple[TestClient, World, dict[str, int]]]:
    """The demo-like case: Ana an arrestee, Vic her victim; ICE's arrestees-only agreement."""
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.begin() as conn:
        for statement in WHO_WROTE:
            conn.exec_driver_sql(statement)
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        ana = data.person(s, "Alvarez", "Ana", sid="SID-2001")
        vic = data.person(s, "Alvarez", "Victor", sid="SID-2002")
        arrest = data.arrest(
            s,
            agency_id=world.agencies[POLICE],
            people=[(ana, InvolvementRole.ARRESTEE), (vic, InvolvementRole.VICTIM)],
        )
        ids = {"ana": ana.id, "vic": vic.id, "arrest": arrest.id}
    with TestClient(create_app(settings, database=fresh_db)) as client:
        yield client, world, ids


def _writers(db: Database) -> list[tuple[str, str, str]]:
    with db.session() as s:
        rows = s.execute(text("SELECT login, acting, action FROM who_wrote ORDER BY action"))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _role(db: Database) -> str:
    with db.session() as s:
        return str(s.execute(text("SELECT openpars_external_role()")).scalar_one())


def test_an_external_api_read_runs_and_is_audited_as_the_external_login(
    site: tuple[TestClient, World, dict[str, int]], fresh_db: Database
) -> None:
    client, world, ids = site
    found = client.get(
        "/api/v1/persons", params={"sid": "SID-2001", **PURPOSE}, headers=world.auth("ice")
    )
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["items"]] == [ids["ana"]]
    internal = client.get("/api/v1/persons/" + str(ids["vic"]), headers=world.auth("reader"))
    assert internal.status_code == 200, internal.text
    role = _role(fresh_db)
    writers = _writers(fresh_db)
    # The external read's audit entry was written by the external login in its own transaction;
    # the internal read's by the application's login.
    assert (role, role, "person.search") in writers
    assert [w for w in writers if w[2] == "person.get"] == [("postgres", "postgres", "person.get")]


def test_a_buggy_application_policy_still_cannot_show_a_victim(
    site: tuple[TestClient, World, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, world, ids = site
    real = enforcement.compile_grant

    def buggy(grant: Grant, floor: SiteFloor) -> ReadPolicy:
        # A bug that forgets the agreement's roles: every involvement, victims included.
        return dataclasses.replace(real(grant, floor), roles=None)

    monkeypatch.setattr(enforcement, "compile_grant", buggy)
    monkeypatch.setattr(enforcement, "_POLICIES", {})
    ice = world.auth("ice")
    victim = client.get(f"/api/v1/persons/{ids['vic']}", params=PURPOSE, headers=ice)
    assert victim.status_code == 404, victim.text
    arrest = client.get(f"/api/v1/arrests/{ids['arrest']}", params=PURPOSE, headers=ice)
    assert arrest.status_code == 200, arrest.text
    people = [i["person"]["id"] for i in arrest.json()["arrest"]["involvements"]]
    assert people == [ids["ana"]]
    names = client.get("/api/v1/persons", params={"name": "alvarez", **PURPOSE}, headers=ice)
    assert [p["id"] for p in names.json()["items"]] == [ids["ana"]]
    # The same bug at an internal reader's request changes nothing: they see both.
    both = client.get(f"/api/v1/arrests/{ids['arrest']}", headers=world.auth("reader"))
    assert len(both.json()["arrest"]["involvements"]) == 2


def test_an_external_console_read_runs_as_the_external_login(
    site: tuple[TestClient, World, dict[str, int]], fresh_db: Database
) -> None:
    _client, _world, ids = site
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    args: list[Any] = ["show", "arrest", str(ids["arrest"]), "--as", "ice", "--db", url]
    shown = CliRunner().invoke(cli_app, [*args, "--purpose", "warrant-service"])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.stdout)["arrest"]["involvements"]) == 1
    role = _role(fresh_db)
    assert (role, role, "arrest.get") in _writers(fresh_db)


def test_a_read_for_an_external_caller_on_the_application_login_fails_closed(
    db: Database, world: World
) -> None:
    # A new path that forgot Database.session(external=True) would read as the application's
    # login, which no floor policy binds: it is refused before any record is read.
    query = PersonQuery(sid="SID-2001")
    with (
        db.session() as s,
        pytest.raises(RuntimeError, match=r"Database.session\(external=True\)"),
    ):
        service.search_persons(
            s, principal=world.principals["ice"], query=query, context=ReadContext(**PURPOSE)
        )

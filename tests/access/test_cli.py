"""Console reads go through the enforcement point as a named user."""

from __future__ import annotations

import json

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.db import Database
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate
from tests.factories import build_world

runner = CliRunner()


def test_search_and_show_as_internal_and_external_users(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        police = world.agencies["Philadelphia Police Department"]
        ana = data.person(s, "Okafor", "Ada", sid="SID-7001")
        vic = data.person(s, "Okafor", "Ben", sid="SID-7002")
        arrest = data.arrest(
            s,
            agency_id=police,
            people=[(ana, InvolvementRole.ARRESTEE), (vic, InvolvementRole.VICTIM)],
        )
        ids = (ana.id, vic.id, arrest.id)
    found = runner.invoke(
        app, ["search", "persons", "--as", "reader", "--name", "okafor", "--json", "--db", url]
    )
    assert found.exit_code == 0, found.output
    assert [p["id"] for p in json.loads(found.stdout)["items"]] == [ids[0], ids[1]]
    external = runner.invoke(
        app,
        [
            "search",
            "persons",
            "--as",
            "ice",
            "--name",
            "okafor",
            "--purpose",
            "warrant-service",
            "--json",
            "--db",
            url,
        ],
    )
    assert external.exit_code == 0, external.output
    assert [p["id"] for p in json.loads(external.stdout)["items"]] == [ids[0]]
    hidden = runner.invoke(
        app,
        ["show", "person", str(ids[1]), "--as", "ice", "--purpose", "warrant-service", "--db", url],
    )
    assert hidden.exit_code == 1
    assert f"no person with id {ids[1]}" in hidden.stderr
    shown = runner.invoke(app, ["show", "arrest", str(ids[2]), "--as", "reader", "--db", url])
    assert shown.exit_code == 0
    assert len(json.loads(shown.stdout)["arrest"]["involvements"]) == 2
    with fresh_db.session() as s:
        reads = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.in_(["person.search", "arrest.get"]))
        )
    assert reads == 3
    with fresh_db.session() as s:
        refused = s.execute(
            select(AuditEntry.action, AuditEntry.user_id).where(
                AuditEntry.outcome == Outcome.REFUSED
            )
        ).all()
    # The refused console read is in the log like an API refusal, under the account named.
    assert refused == [("person.get", world.users["ice"])]

"""`openpars search` tables and `--as` refusals, as an operator reads them at the console."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from openpars.cli import app
from openpars.db import Database
from openpars.identity.models import User
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate
from tests.factories import build_world

runner = CliRunner()
POLICE = "Philadelphia Police Department"
OTN = "N7101001-1"


@dataclass(frozen=True)
class Site:
    """A committed database with two persons and one arrest."""

    url: str
    ada: int
    ben: int
    arrest: int
    otn: str


@pytest.fixture
def site(fresh_db: Database) -> Site:
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.session() as s:
        world = build_world(s)
        activate(s, world)
        ada = data.person(s, "Okafor", "Ada", sid="SID-7101")
        ben = data.person(s, "Okafor", "Ben", sid="SID-7102", birth_date=None)
        arrest = data.arrest(
            s,
            agency_id=world.agencies[POLICE],
            people=[(ada, InvolvementRole.ARRESTEE), (ben, InvolvementRole.VICTIM)],
            otn=OTN,
        )
        arrest.docket_number = "MC-51-CR-0007101-2025"
        s.flush()
        site = Site(
            url=fresh_db.bind.url.render_as_string(hide_password=False),
            ada=ada.id,
            ben=ben.id,
            arrest=arrest.id,
            otn=OTN,
        )
    return site


def _run(site: Site, *args: str) -> str:
    # A fixed width, so no column is cut short whatever terminal runs the tests.
    result = runner.invoke(app, [*args, "--db", site.url], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _table(output: str) -> tuple[str, list[list[str]]]:
    """The title and body rows of a rich table (header row left out)."""
    lines = output.splitlines()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if "│" in line]
    return lines[0].strip(), rows


def test_person_table_lists_visible_persons(site: Site) -> None:
    title, rows = _table(_run(site, "search", "persons", "--as", "reader", "--name", "okafor"))
    assert title == "2 persons"
    assert rows == [
        [str(site.ada), "Okafor", "Ada", "1990-05-17", "SID-7101"],
        [str(site.ben), "Okafor", "Ben", "", "SID-7102"],
    ]
    # The external account sees the arrestee only, born in a year, as its agreement says.
    title, rows = _table(
        _run(
            site,
            "search",
            "persons",
            "--as",
            "ice",
            "--name",
            "okafor",
            "--purpose",
            "warrant-service",
        )
    )
    assert title == "1 persons"
    assert rows == [[str(site.ada), "Okafor", "Ada", "1990", "SID-7101"]]


def test_person_table_title_marks_a_partial_total(site: Site) -> None:
    args = ("search", "persons", "--as", "reader", "--name", "okafor", "--limit", "1")
    title, rows = _table(_run(site, *args))
    assert title.endswith("+ persons")
    assert [r[0] for r in rows] == [str(site.ada)]
    title, rows = _table(_run(site, *args, "--count"))
    assert title == "2 persons"
    assert len(rows) == 1


def test_arrest_table_lists_the_arrest(site: Site) -> None:
    title, rows = _table(_run(site, "search", "arrests", "--as", "reader", "--otn", site.otn))
    assert title == "1 arrests"
    assert rows == [
        [
            str(site.arrest),
            site.otn,
            "2025-03-04T22:15:00+00:00",
            "arraigned",
            "MC-51-CR-0007101-2025",
        ]
    ]
    as_json = json.loads(
        _run(site, "search", "arrests", "--as", "reader", "--otn", site.otn, "--json")
    )
    assert [(a["id"], a["docket_number"]) for a in as_json["items"]] == [
        (site.arrest, "MC-51-CR-0007101-2025")
    ]
    assert as_json["total"] == 1
    title, rows = _table(_run(site, "search", "arrests", "--as", "reader", "--state", "released"))
    assert (title, rows) == ("0 arrests", [])


def test_external_arrest_table_is_the_granted_row(site: Site) -> None:
    # The default agreement grants OTN, arrest time, state and docket: the row is the reader's.
    args = ("search", "arrests", "--otn", site.otn)
    _, internal = _table(_run(site, *args, "--as", "reader"))
    title, external = _table(_run(site, *args, "--as", "ice", "--purpose", "warrant-service"))
    assert (title, external) == ("1 arrests", internal)
    refused = runner.invoke(app, [*args, "--as", "ice", "--db", site.url], env={"COLUMNS": "120"})
    assert refused.exit_code == 1
    assert "must state a purpose" in refused.stderr and "(field: purpose)" in refused.stderr


def test_show_person_prints_the_visible_involvements(site: Site) -> None:
    internal = json.loads(_run(site, "show", "person", str(site.ada), "--as", "reader"))
    assert internal["person"]["sid"] == "SID-7101"
    assert [i["arrest_id"] for i in internal["person"]["involvements"]] == [site.arrest]
    external = json.loads(
        _run(site, "show", "person", str(site.ada), "--as", "ice", "--purpose", "warrant-service")
    )
    # The agreement shows the year of birth only, and says which agreement decided it.
    assert external["person"]["birth_date"] == "1990"
    assert external["decision"]["external"] is True
    assert external["decision"]["agreement_id"] is not None


@pytest.mark.parametrize("username", ["nobody", "disabled"])
def test_unknown_or_inactive_account_is_refused(
    fresh_db: Database, site: Site, username: str
) -> None:
    if username == "disabled":
        # A real account, switched off: refused exactly like a name nobody has.
        with fresh_db.session() as s:
            reader = s.scalars(select(User).where(User.username == "reader")).one()
            reader.username, reader.is_active = "disabled", False
    for command in (
        ["search", "persons", "--name", "okafor"],
        ["show", "arrest", str(site.arrest)],
    ):
        result = runner.invoke(app, [*command, "--as", username, "--db", site.url])
        assert result.exit_code == 1, result.output
        assert f"error: no active user named '{username}' (field: --as)" in result.stderr
        assert result.stdout == ""

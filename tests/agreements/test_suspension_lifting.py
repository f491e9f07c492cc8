"""Issue 11, attack 3: a suspension is lifted only by the stakeholder that imposed it.

The attacker holds the city's administrator account (or another stakeholder's voter, or the
grantee's own token) and tries to lift the DA's kill switch through the API and the console.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openpars.agreements.cli import app as cli_app
from openpars.agreements.service import grant_for
from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.identity.roles import Role
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate
from tests.factories import World, add_user, build_world, city_voter

DA = "District Attorney's Office"
COURT = "First Judicial District"
POLICE = "Philadelphia Police Department"
READ = {"sid": "SID-3001", "purpose": "warrant-service"}


def seed(session: Session, world: World) -> int:
    """An agreement in force for ICE, one arrestee it may read, and two stakeholders' voters."""
    agreement = activate(session, world)
    ana = data.person(session, "Alvarez", "Ana", sid="SID-3001")
    data.arrest(session, agency_id=world.agencies[POLICE], people=[(ana, InvolvementRole.ARRESTEE)])
    # Separation of duties: the console bootstraps each stakeholder's administrator, who
    # creates its voters.
    add_user(session, world, "da-admin", DA, [Role.STAKEHOLDER_ADMIN])
    add_user(session, world, "court-admin", COURT, [Role.STAKEHOLDER_ADMIN])
    add_user(session, world, "da-voter", DA, [Role.VOTER], by="da-admin")
    add_user(session, world, "da-voter-2", DA, [Role.VOTER], by="da-admin")
    add_user(session, world, "court-voter", COURT, [Role.VOTER], by="court-admin")
    return agreement.id


def refusals(session: Session, user_id: int) -> list[dict[str, Any]]:
    """The contents of the refused resumptions written under an account."""
    ids = session.scalars(
        select(AuditEntry.id).where(
            AuditEntry.outcome == Outcome.REFUSED,
            AuditEntry.user_id == user_id,
            AuditEntry.action.contains("resume"),
        )
    ).all()
    out = []
    for entry_id in ids:
        row = session.get(AuditEntry, entry_id)
        assert row is not None and row.content is not None
        out.append(json.loads(row.content))
    return out


def test_api_only_the_imposing_stakeholder_lifts_a_suspension(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        agreement_id = seed(session, world)
    assert client.get("/api/v1/persons", params=READ, headers=world.auth("ice")).status_code == 200
    cut = client.post(
        f"/api/v1/agreements/{agreement_id}/suspensions",
        json={"target": "agreement", "reason": "queries outside stated purpose"},
        headers=world.auth("da-voter"),
    )
    assert cut.status_code == 201, cut.text
    sid = cut.json()["id"]
    assert cut.json()["stakeholder_id"] == world.agencies[DA]
    assert client.get("/api/v1/persons", params=READ, headers=world.auth("ice")).status_code == 403
    resume = f"/api/v1/agreements/{agreement_id}/suspensions/{sid}/resume"
    body = {"reason": "the city says it is fine"}

    # The city's administrator, another stakeholder's voter: refused, and the cut holds.
    for attacker in ("agreements", "court-voter"):
        refused = client.post(resume, json=body, headers=world.auth(attacker))
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "not_imposing_stakeholder"
        assert error["field"] == "suspension_id"
        assert "only an account of that stakeholder" in error["message"]
        assert "quorum 'resume' decision" in error["message"]
        ice_read = client.get("/api/v1/persons", params=READ, headers=world.auth("ice"))
        assert ice_read.status_code == 403
    # The grantee itself has no say at all.
    assert client.post(resume, json=body, headers=world.auth("ice")).status_code == 403
    listed = client.get(
        f"/api/v1/agreements/{agreement_id}/suspensions", headers=world.auth("agreements")
    ).json()["items"]
    assert listed[0]["resumed_at"] is None
    with db.session() as session:
        for attacker in ("agreements", "court-voter", "ice"):
            (entry,) = refusals(session, world.users[attacker])
            assert entry["action"] == f"POST {resume}"
        assert refusals(session, world.users["agreements"])[0]["error_code"] == (
            "not_imposing_stakeholder"
        )

    # Any account of the stakeholder that imposed it may lift it.
    lifted = client.post(resume, json=body, headers=world.auth("da-voter-2"))
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["resumed_by"] == "da-voter-2"
    with db.session() as session:
        (entry_id,) = session.scalars(
            select(AuditEntry.id).where(
                AuditEntry.action == "agreement.resume",
                AuditEntry.user_id == world.users["da-voter-2"],
            )
        ).all()
        entry = session.get(AuditEntry, entry_id)
        assert entry is not None and entry.content is not None
        params = json.loads(entry.content)["params"]
        assert (params["suspension_id"], params["stakeholder_id"]) == (sid, world.agencies[DA])
    assert client.get("/api/v1/persons", params=READ, headers=world.auth("ice")).status_code == 200


def test_api_any_stakeholder_suspends_alone_even_over_another(
    client: TestClient, db: Database, world: World
) -> None:
    with db.session() as session:
        agreement_id = seed(session, world)
    # The court cuts off one ICE account while the DA's suspension of the agreement stands.
    da_cut = client.post(
        f"/api/v1/agreements/{agreement_id}/suspensions",
        json={"target": "agreement", "reason": "audit finding"},
        headers=world.auth("da-voter"),
    )
    court_cut = client.post(
        f"/api/v1/agreements/{agreement_id}/suspensions",
        json={"target": "account", "target_id": world.users["ice"], "reason": "misuse"},
        headers=world.auth("court-voter"),
    )
    assert (da_cut.status_code, court_cut.status_code) == (201, 201)
    # The DA lifts its own; the court's still cuts the account off, and the DA cannot lift it.
    base = f"/api/v1/agreements/{agreement_id}/suspensions"
    ok = client.post(
        f"{base}/{da_cut.json()['id']}/resume",
        json={"reason": "done"},
        headers=world.auth("da-voter"),
    )
    assert ok.status_code == 200
    assert client.get("/api/v1/persons", params=READ, headers=world.auth("ice")).status_code == 403
    no = client.post(
        f"{base}/{court_cut.json()['id']}/resume",
        json={"reason": "done"},
        headers=world.auth("da-voter"),
    )
    assert no.status_code == 403
    assert no.json()["error"]["code"] == "not_imposing_stakeholder"


def run(url: str, *args: str) -> Any:
    """One console command against the test database."""
    return CliRunner().invoke(cli_app, [*args, "--db", url])


def test_cli_only_the_imposing_stakeholder_lifts_a_suspension(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
        agreement_id = seed(session, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)

    def ice_reads() -> bool:
        with fresh_db.session() as session:
            return grant_for(session, principal=world.principals["ice"], at=utcnow()) is not None

    assert ice_reads()
    cut = run(
        url, "agreement", "suspend", str(agreement_id), "--reason", "misuse", "--as", "da-voter"
    )
    assert cut.exit_code == 0, cut.output
    sid = cut.output.split()[1].rstrip(":")
    assert not ice_reads()
    # The console's own system account, the city's admin, the court's voter: all refused.
    for attacker in (None, "agreements", "court-voter"):
        as_user = ["--as", attacker] if attacker else []
        refused = run(url, "agreement", "resume", sid, "--reason", "lift it", *as_user)
        assert refused.exit_code == 1, refused.output
        assert "only an account of that stakeholder" in refused.output
        assert not ice_reads()
    with fresh_db.session() as session:
        for attacker in ("agreements", "court-voter"):
            (entry,) = refusals(session, world.users[attacker])
            assert entry["action"] == "agreement.resume"
            assert entry["error_code"] == "not_imposing_stakeholder"
        system = session.scalars(
            select(AuditEntry.id).where(
                AuditEntry.outcome == Outcome.REFUSED,
                AuditEntry.user_id.is_(None),
                AuditEntry.action == "agreement.resume",
            )
        ).all()
        assert len(system) == 1
    lifted = run(url, "agreement", "resume", sid, "--reason", "cleared", "--as", "da-voter-2")
    assert lifted.exit_code == 0, lifted.output
    assert ice_reads()


def test_cli_resume_help_says_who_may_lift() -> None:
    shown = CliRunner().invoke(cli_app, ["agreement", "resume", "--help"])
    assert "stakeholder that imposed it" in " ".join(shown.output.split())


def test_the_site_administrator_speaks_for_no_stakeholder(
    client: TestClient, db: Database, world: World
) -> None:
    """The site admin sits in the city's agency, yet lifts none of the city's suspensions, and
    what it suspends only a quorum lifts (the city's own voter cannot undo it alone either)."""
    with db.session() as session:
        agreement_id = seed(session, world)
        voter = city_voter(session, world)
    base = f"/api/v1/agreements/{agreement_id}/suspensions"
    body = {"reason": "reviewed"}
    by_city = client.post(
        base, json={"target": "agreement", "reason": "misuse"}, headers=world.auth(voter)
    )
    assert by_city.status_code == 201, by_city.text
    assert by_city.json()["stakeholder_id"] == world.agencies["City of Philadelphia"]
    lifted = client.post(
        f"{base}/{by_city.json()['id']}/resume", json=body, headers=world.auth("agreements")
    )
    assert lifted.status_code == 403, lifted.text
    assert lifted.json()["error"]["code"] == "not_imposing_stakeholder"
    assert client.get("/api/v1/persons", params=READ, headers=world.auth("ice")).status_code == 403
    by_admin = client.post(
        base,
        json={"target": "account", "target_id": world.users["ice"], "reason": "misuse"},
        headers=world.auth("agreements"),
    )
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["stakeholder_id"] is None
    for who in ("agreements", voter):
        again = client.post(
            f"{base}/{by_admin.json()['id']}/resume", json=body, headers=world.auth(who)
        )
        assert again.status_code == 403, (who, again.text)

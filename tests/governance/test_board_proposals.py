"""The board changes only by its own quorum, tried as one administrator or one stakeholder would."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.governance import board
from openpars.governance.cli import app
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from tests.factories import build_world
from tests.governance.helpers import Gov, build_gov, document, register

runner = CliRunner()


def board_now(gov: Gov) -> tuple[int, list[int], int]:
    """(version, members, quorum) of the board in force."""
    with gov.session() as session:
        config = board.current_board(session)
        return config.version, list(config.members), config.quorum


def propose_board(
    gov: Gov, members: list[str], quorum: int, *, who: str = "da", now: datetime
) -> int:
    """Open a board proposal as a stakeholder's voter; returns its id."""
    with gov.session() as session:
        proposal = open_proposal(
            session,
            actor=gov.voters[who],
            data=ProposalCreate(
                action=ProposalAction.BOARD,
                board=BoardUpdate(
                    members=[gov.agencies[m] for m in members], quorum=quorum, solo_actions=[]
                ),
                summary="change the board",
                deadline=now + timedelta(days=14),
            ),
            now=now,
        )
        return proposal.id


def vote(gov: Gov, pid: int, who: str, choice: Choice, at: datetime) -> ProposalStatus:
    """Sign and submit at ``at`` (also the server's clock)."""
    with gov.session() as session:
        submit_vote(session, actor=gov.voters[who], data=gov.ballot(pid, who, choice, at), now=at)
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        return proposal.status


# ---- through the API --------------------------------------------------------------------------


def test_one_admin_cannot_rewrite_the_board_through_the_api(client: TestClient, gov: Gov) -> None:
    admin = gov.world.auth("agreements")
    before = client.get("/api/v1/board", headers=admin).json()
    # The attack of issue 11 as it was: PUT /board as the site administrator.
    attack = client.put("/api/v1/board", json={"members": [5], "quorum": 1}, headers=admin)
    assert attack.status_code == 405, attack.text
    # The only way left is a proposal, and opening one changes nothing in force.
    opened = client.post(
        "/api/v1/proposals",
        json={
            "action": "board",
            "board": {"members": [gov.agencies["da"]], "quorum": 1, "solo_actions": []},
            "summary": "the DA alone decides",
            "deadline": (utcnow() + timedelta(days=7)).isoformat(),
        },
        headers=admin,
    )
    assert opened.status_code == 201, opened.text
    proposal = opened.json()
    assert (proposal["action"], proposal["status"], proposal["agreement_id"]) == (
        "board",
        "open",
        None,
    )
    assert proposal["board"]["members"] == [gov.agencies["da"]]
    after = client.get("/api/v1/board", headers=admin).json()
    # The same board; each read names its own audit entry.
    assert after.pop("audit_entry") > before["audit_entry"]
    assert after == {k: v for k, v in before.items() if k != "audit_entry"}
    # Nor can the administrator vote on it.
    ballot = gov.ballot(proposal["id"], "da", Choice.YES, utcnow()).model_dump(mode="json")
    refused = client.post(f"/api/v1/proposals/{proposal['id']}/votes", json=ballot, headers=admin)
    assert refused.status_code == 403, refused.text
    # One stakeholder's yes leaves it pending; the board in force's quorum (2 of 3) adopts it.
    first = client.post(
        f"/api/v1/proposals/{proposal['id']}/votes", json=ballot, headers=gov.auth("da")
    )
    assert first.status_code == 201, first.text
    shown = client.get(f"/api/v1/proposals/{proposal['id']}", headers=admin).json()
    assert (shown["status"], shown["tally"]["needed"]) == ("open", 1)
    assert client.get("/api/v1/board", headers=admin).json()["version"] == before["version"]
    second = gov.ballot(proposal["id"], "court", Choice.YES, utcnow()).model_dump(mode="json")
    response = client.post(
        f"/api/v1/proposals/{proposal['id']}/votes", json=second, headers=gov.auth("court")
    )
    assert response.status_code == 201, response.text
    after = client.get("/api/v1/board", headers=admin).json()
    assert (after["version"], after["quorum"], [m["agency_id"] for m in after["members"]]) == (
        before["version"] + 1,
        1,
        [gov.agencies["da"]],
    )


def test_a_board_proposal_is_never_solo_and_refuses_a_foreign_subject(
    client: TestClient, gov: Gov
) -> None:
    members = [gov.agencies[w] for w in ("da", "court", "city")]
    base: dict[str, Any] = {
        "action": "board",
        "summary": "x",
        "deadline": (utcnow() + timedelta(days=7)).isoformat(),
    }
    cases = [
        ({"board": {"members": members, "quorum": 1, "solo_actions": ["board"]}}, "solo_actions"),
        ({"board": {"members": members, "quorum": 4}}, "quorum"),
        ({}, "board"),
        ({"board": {"members": members, "quorum": 2}, "agreement_id": 1}, "agreement_id"),
        ({"board": {"members": members, "quorum": 2, "solo_actions": ["suspend"]}}, "board"),
    ]
    for extra, field in cases:
        response = client.post("/api/v1/proposals", json={**base, **extra}, headers=gov.auth("da"))
        assert response.status_code in (409, 422), response.text
        assert response.json()["error"]["field"] == field, (extra, response.text)
    adopt = {**base, "action": "adopt", "agreement_id": gov.agreement_id}
    response = client.post(
        "/api/v1/proposals",
        json={**adopt, "board": {"members": members, "quorum": 1}},
        headers=gov.auth("da"),
    )
    assert response.json()["error"]["field"] == "board", response.text


# ---- through the services -----------------------------------------------------------------------


def test_the_new_board_governs_and_a_removed_member_is_refused(gov: Gov) -> None:
    t = gov.t0
    before = gov.propose(ProposalAction.ADOPT, now=t)
    pid = propose_board(gov, ["da", "court"], 2, now=t)
    assert vote(gov, pid, "city", Choice.YES, t + timedelta(minutes=1)) is ProposalStatus.OPEN
    assert board_now(gov)[0] == 1
    assert vote(gov, pid, "da", Choice.YES, t + timedelta(minutes=2)) is ProposalStatus.APPLIED
    version, members, quorum = board_now(gov)
    assert (version, members, quorum) == (2, [gov.agencies["da"], gov.agencies["court"]], 2)
    with gov.session() as session:
        stale = session.get(Proposal, before)
        assert stale is not None
        assert stale.status is ProposalStatus.VOIDED
        assert "the board changed" in (stale.closed_reason or "")
    # The city, no longer on the board, is refused on the old proposal and on a new one.
    with pytest.raises(Conflict, match="voided"):
        vote(gov, before, "city", Choice.YES, t + timedelta(minutes=3))
    after = gov.propose(ProposalAction.ADOPT, now=t + timedelta(minutes=4))
    with pytest.raises(Forbidden, match="not a stakeholder on board version 2"):
        vote(gov, after, "city", Choice.YES, t + timedelta(minutes=5))
    # The new board's quorum is 2 of 2: the DA alone no longer decides.
    assert vote(gov, after, "da", Choice.YES, t + timedelta(minutes=6)) is ProposalStatus.OPEN
    assert vote(gov, after, "court", Choice.YES, t + timedelta(minutes=7)) in (
        ProposalStatus.APPROVED,
        ProposalStatus.APPLIED,
    )


def test_the_first_board_is_set_once_and_logged(gov: Gov) -> None:
    admin = gov.world.principals["agreements"]
    with gov.session() as session:
        # No board yet: the first use sets the default one, and the log records it.
        assert board.current_board(session).version == 1
        assert board.current_board(session).version == 1
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "board.bootstrap")
        ).all()
        assert len(entries) == 1
        with pytest.raises(Conflict, match="only the board itself can change it"):
            board.bootstrap(
                session,
                actor=admin,
                data=BoardUpdate(members=[gov.agencies["da"]], quorum=1),
            )
        with pytest.raises(InvalidInput, match="listed twice"):
            board.validated_document(
                session, BoardUpdate(members=[gov.agencies["da"]] * 2, quorum=1)
            )


def test_one_admin_at_the_console_only_opens_a_proposal(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    before = board_now(gov)
    da = str(gov.agencies["da"])
    init = runner.invoke(
        app, ["board", "init", "--member", da, "--quorum", "1", "--as", "agreements", "--db", url]
    )
    assert init.exit_code == 1, init.output
    assert "only the board itself can change it" in " ".join(init.output.split())
    deadline = (utcnow() + timedelta(days=7)).isoformat()
    args = ["board", "propose", "--member", da, "--quorum", "1", "--deadline", deadline]
    opened = runner.invoke(app, [*args, "--summary", "mine", "--as", "agreements", "--db", url])
    assert opened.exit_code == 0, opened.output
    assert "nothing changes until the board's quorum approves" in " ".join(opened.output.split())
    assert board_now(gov) == before


def test_a_changed_agreement_voids_its_proposals_at_once(client: TestClient, gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT, now=utcnow())
    new = document(gov.world, start=gov.t0, end=gov.t0 + timedelta(days=365))
    body = {**new.model_dump(mode="json"), "name": "ICE, amended", "reason": "rename"}
    changed = client.put(
        f"/api/v1/agreements/{gov.agreement_id}", json=body, headers=gov.world.auth("agreements")
    )
    assert changed.status_code == 200, changed.text
    # No vote and no tick has run: the record already shows the proposal voided.
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.status is ProposalStatus.VOIDED
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "proposal.void_stale")
        ).one()
        assert entry.agreement_id == gov.agreement_id


def test_a_new_five_member_board_counts_new_members(gov: Gov) -> None:
    t = gov.t0
    with gov.session() as session:
        register(session, gov, "pretrial")
    pid = propose_board(gov, ["da", "court", "city", "pretrial"], 3, now=t)
    with pytest.raises(Forbidden, match="not a stakeholder on board version 1"):
        vote(gov, pid, "pretrial", Choice.YES, t + timedelta(minutes=1))
    vote(gov, pid, "da", Choice.YES, t + timedelta(minutes=2))
    assert vote(gov, pid, "court", Choice.YES, t + timedelta(minutes=3)) is ProposalStatus.APPLIED
    assert board_now(gov)[2] == 3

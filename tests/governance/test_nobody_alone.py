"""Issue 11, "Nobody alone": each attack tried as the attacker would, through the API and the CLI.

Where each of attacks 1-5 is tried (attack 6, the vote statement, has its own tests), and what
each test checks: the refusal (status or exit code, error code, field), the audit entry of the
refusal where the edge audits it, and that what the outside agency reads did not change.

attack                          where (G = tests/governance, A = tests/audit, Ag = tests/agreements)
------------------------------  -------------------------------------------------------------------
1. quorum by one person         API  here test_attack_1_api_...; G/test_separation_of_duties.py
                                     test_site_admin_cannot_assemble_a_quorum_through_the_api,
                                     test_a_stakeholder_admin_manages_only_its_own
                                CLI  here test_attack_1_and_2_cli_... (votes);
                                     G/test_separation_of_duties.py test_the_attack_at_the_console,
                                     test_the_console_bootstraps_only_a_first_stakeholder_admin
2. the board rewritten          API  here test_attack_2_api_...; G/test_board_proposals.py
   by one person                     test_one_admin_cannot_rewrite_the_board_through_the_api
                                CLI  here test_attack_1_and_2_cli_...; G/test_board_proposals.py
                                     test_one_admin_at_the_console_only_opens_a_proposal
3. another stakeholder's        API  Ag/test_suspension_lifting.py
   suspension lifted                 test_api_only_the_imposing_stakeholder_lifts_a_suspension,
                                     test_the_site_administrator_speaks_for_no_stakeholder
                                CLI  Ag/test_suspension_lifting.py
                                     test_cli_only_the_imposing_stakeholder_lifts_a_suspension
4. misuse evidence erased       API  A/test_shred_attacks.py
                                     test_api_shredding_without_the_records_order_is_refused_...
                                CLI  A/test_shred_attacks.py
                                     test_cli_shredding_without_the_records_order_is_refused_...
5. a rewritten history          API  A/test_log_key.py test_a_lost_or_replaced_key_stops_the_...
   that verifies                     (the app refuses to start), test_a_real_export_unwitnessed_...
                                CLI  A/test_log_key.py (serve, audit checkpoint, audit key, audit
                                     export, then openpars-verify on the export)

All of it at once, over random sequences: test_nobody_alone_property.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from openpars.agreements.grants import grant_for
from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.governance import board
from openpars.governance.cli import app as governance_cli
from openpars.governance.models import Proposal, ProposalStatus, Vote
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.votes import submit_vote
from openpars.identity.models import User
from tests.factories import build_world
from tests.governance.helpers import Gov, build_gov, document, scope

API = "/api/v1"
READ = {"otn": "N 000000-0", "purpose": "criminal-investigation"}


def adopt(gov: Gov) -> None:
    """Put the ICE agreement in force the only way there is: the DA's and the courts' votes."""
    pid = gov.propose(ProposalAction.ADOPT, now=utcnow())
    for who in ("da", "court"):
        at = utcnow()
        with gov.session() as session:
            submit_vote(
                session, actor=gov.voters[who], data=gov.ballot(pid, who, Choice.YES, at), now=at
            )


def what_ice_reads(gov: Gov, client: TestClient | None = None) -> tuple[Any, ...]:
    """ICE's grant (agreement, version, hash, window) and, over HTTP, its search's status."""
    with gov.session() as session:
        grant = grant_for(session, principal=gov.world.principals["ice"], at=utcnow())
    seen: tuple[Any, ...] = ()
    if grant is not None:
        seen = (grant.agreement_id, grant.version, grant.content_hash, grant.expires_at)
    if client is not None:
        search = client.get(f"{API}/arrests", params=READ, headers=gov.world.auth("ice"))
        # Each read is a new audit entry; what it names is the read itself, not what ICE sees.
        body = search.json()
        body.pop("audit_entry", None)
        seen += (search.status_code, body)
    return seen


def refused(gov: Gov, username: str) -> list[dict[str, Any]]:
    """The contents of the refusals audited under an account, oldest first."""
    with gov.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        ids = session.scalars(
            select(AuditEntry.id)
            .where(AuditEntry.outcome == Outcome.REFUSED, AuditEntry.user_id == user_id)
            .order_by(AuditEntry.id)
        ).all()
        entries = [session.get(AuditEntry, i) for i in ids]
    return [json.loads(e.content) for e in entries if e is not None and e.content is not None]


def votes_on(gov: Gov, pid: int) -> int:
    with gov.session() as session:
        return session.scalar(select(func.count()).where(Vote.proposal_id == pid)) or 0


def status_of(gov: Gov, pid: int) -> ProposalStatus:
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        return proposal.status


def test_attack_1_api_one_administrator_cannot_vote_a_wider_agreement_into_force(
    client: TestClient, gov: Gov
) -> None:
    """The city's administrator, holding the DA's voter too (and a copy of the DA's and the
    courts' private keys), widens the agreement in force and tries to carry the vote."""
    adopt(gov)
    before = what_ice_reads(gov, client)
    assert before[-2] == 200, before
    assert before[2] == gov.content_hash()
    admin = gov.world.auth("agreements")
    # Editing is the administrator's job: it writes a new version that is not in force.
    wider = document(gov.world, start=gov.t0, end=gov.t0 + timedelta(days=365))
    body = wider.model_dump(mode="json")
    body["scope"] = {**scope(), "grades": ["F1", "F2", "F3", "M1"]}
    edited = client.put(
        f"{API}/agreements/{gov.agreement_id}", json={**body, "reason": "wider"}, headers=admin
    )
    assert edited.status_code == 200, edited.text
    assert what_ice_reads(gov, client) == before
    opened = client.post(
        f"{API}/proposals",
        json={
            "action": "amend",
            "agreement_id": gov.agreement_id,
            "summary": "more grades",
            "deadline": (utcnow() + timedelta(days=7)).isoformat(),
        },
        headers=admin,
    )
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    url = f"{API}/proposals/{pid}/votes"
    # The administrator's own votes, signed with the stolen stakeholder keys: refused.
    for stolen in ("da", "court"):
        ballot = gov.ballot(pid, "agreements", Choice.YES, utcnow(), key=stolen)
        vote = client.post(url, json=ballot.model_dump(mode="json"), headers=admin)
        assert vote.status_code == 403, vote.text
        error = vote.json()["error"]
        # The edge refuses it before any service runs: the account holds no right to vote.
        assert (error["code"], error["field"]) == ("permission_denied", None)
        assert "vote" in error["message"]
    # The DA's voter (also the attacker's) votes with the courts' key, then with its own.
    theft = gov.ballot(pid, "da", Choice.YES, utcnow(), key="court")
    forged = client.post(url, json=theft.model_dump(mode="json"), headers=gov.auth("da"))
    assert forged.status_code == 403, forged.text
    assert forged.json()["error"]["code"] == "key_not_registered"
    own = gov.ballot(pid, "da", Choice.YES, utcnow())
    assert (
        client.post(url, json=own.model_dump(mode="json"), headers=gov.auth("da")).status_code
        == 201
    )
    # One stakeholder's yes, however many accounts and keys it tried: nothing changes.
    assert status_of(gov, pid) is ProposalStatus.OPEN
    assert votes_on(gov, pid) == 1
    assert what_ice_reads(gov, client) == before
    audited = refused(gov, "agreements")
    assert [(e["action"], e["error_code"]) for e in audited] == [
        (f"POST {url}", "permission_denied")
    ] * 2
    (theft_entry,) = refused(gov, "da-voter")
    assert (theft_entry["action"], theft_entry["error_code"]) == (
        f"POST {url}",
        "key_not_registered",
    )


def test_attack_2_api_one_administrator_cannot_rewrite_the_board(
    client: TestClient, gov: Gov
) -> None:
    """The board of issue 11's attack ({"members":[5],"quorum":1}) as the administrator's own
    proposal: it may open it, but neither it nor one stakeholder puts it in force."""
    adopt(gov)
    admin = gov.world.auth("agreements")
    before_board = client.get(f"{API}/board", headers=admin).json()
    before_board.pop("audit_entry")
    before = what_ice_reads(gov, client)
    rewrite = client.put(f"{API}/board", json={"members": [5], "quorum": 1}, headers=admin)
    assert rewrite.status_code == 405
    city = gov.agencies["city"]
    opened = client.post(
        f"{API}/proposals",
        json={
            "action": "board",
            "board": {"members": [city], "quorum": 1, "solo_actions": ["adopt", "amend"]},
            "summary": "the city decides alone",
            "deadline": (utcnow() + timedelta(days=7)).isoformat(),
        },
        headers=admin,
    )
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    url = f"{API}/proposals/{pid}/votes"
    ballot = gov.ballot(pid, "agreements", Choice.YES, utcnow(), key="city")
    vote = client.post(url, json=ballot.model_dump(mode="json"), headers=admin)
    assert vote.status_code == 403
    assert vote.json()["error"]["code"] == "permission_denied"
    city_yes = gov.ballot(pid, "city", Choice.YES, utcnow())
    city_vote = client.post(url, json=city_yes.model_dump(mode="json"), headers=gov.auth("city"))
    assert city_vote.status_code == 201, city_vote.text
    assert city_vote.json()["proposal"]["tally"]["needed"] == 1
    # Neither the board nor what ICE reads moved; the refused vote is on the record.
    after_board = client.get(f"{API}/board", headers=admin).json()
    after_board.pop("audit_entry")
    assert after_board == before_board
    assert what_ice_reads(gov, client) == before
    assert [(e["action"], e["error_code"]) for e in refused(gov, "agreements")] == [
        (f"POST {url}", "permission_denied")
    ]


def test_attack_1_and_2_cli_the_administrators_votes_are_refused_at_the_console(
    fresh_db: Database, tmp_path: Path
) -> None:
    """At the console, with the database URL: the administrator opens an adoption and a board
    of its own and submits votes signed with stolen keys; none counts, nothing is in force."""
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(governance_cli, [*args, "--db", url])

    def vote_file(pid: int, signer: str) -> str:
        path = tmp_path / f"vote-{pid}-{signer}.json"
        ballot = gov.ballot(pid, "agreements", Choice.YES, utcnow(), key=signer)
        path.write_text(ballot.model_dump_json(), encoding="utf-8")
        return str(path)

    deadline = (utcnow() + timedelta(days=7)).isoformat()
    adoption = run(
        "proposal", "open", "--agreement", str(gov.agreement_id), "--action", "adopt",
        "--summary", "adopt it", "--deadline", deadline, "--as", "agreements",
    )  # fmt: skip
    assert adoption.exit_code == 0, adoption.output
    members = ["--member", str(gov.agencies["city"]), "--quorum", "1"]
    rewrite = run(
        "board",
        "propose",
        *members,
        "--deadline",
        deadline,
        "--summary",
        "mine",
        "--as",
        "agreements",
    )
    assert rewrite.exit_code == 0, rewrite.output
    with gov.session() as session:
        pids = session.scalars(select(Proposal.id).order_by(Proposal.id)).all()
    assert len(pids) == 2
    for pid in pids:
        for signer in ("da", "court", "city"):
            submitted = run("vote", "submit", vote_file(pid, signer), "--as", "agreements")
            assert submitted.exit_code == 1, submitted.output
            assert "not a designated voter" in " ".join(submitted.output.split())
    # And the console's own account (no --as) is no voter either.
    alone = run("vote", "submit", vote_file(pids[0], "da"))
    assert alone.exit_code == 1, alone.output
    with gov.session() as session:
        assert session.scalar(select(func.count()).select_from(Vote)) == 0
        assert {p.status for p in session.scalars(select(Proposal))} == {ProposalStatus.OPEN}
        assert board.current_board(session).version == 1
    assert what_ice_reads(gov) == ()
    # Each refusal at the console is on the record under the account that tried, as over HTTP.
    attempts = [
        (e["action"], e["error_code"], e["params"]["via"]) for e in refused(gov, "agreements")
    ]
    assert (
        attempts == [("cli governance.cli_signing.vote_submit", "not_designated_voter", "cli")] * 6
    )

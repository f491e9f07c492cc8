"""Witnesses change only by the board's quorum, tried as one administrator or stakeholder would."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from openpars.audit import checkpoints
from openpars.audit import witness as registry
from openpars.audit.cli import app as audit_cli
from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.governance import decisions, witness_changes
from openpars.governance.cli import app as governance_cli
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate, WitnessChange
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from openpars.identity.principal import SYSTEM
from tests.audit.test_api_log import publish
from tests.audit.test_log import add_entries, cosignature_line, witness_keys
from tests.factories import World, build_world
from tests.governance.helpers import Gov, build_gov

runner = CliRunner()
API = "/api/v1"


def honest(gov: Gov) -> dict[str, Any]:
    """Two stakeholders' witnesses in force (installed directly: the test's own set-up)."""
    keys = {who: witness_keys(f"{who}.witness.example") for who in ("da", "court")}
    with gov.session() as session:
        for _, vkey in keys.values():
            registry.install(session, vkey=vkey)
    return keys


def contents(db: Database) -> list[dict[str, Any]]:
    """Every audit entry's content (who, what, params, outcome, error code)."""
    with db.session() as session:
        return [
            json.loads(row.content)
            for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


def refusals(db: Database, code: str) -> list[dict[str, Any]]:
    return [c for c in contents(db) if c.get("error_code") == code]


def actions(db: Database, action: str) -> list[dict[str, Any]]:
    return [c for c in contents(db) if c.get("action") == action]


def active_names(gov: Gov) -> list[str]:
    with gov.session() as session:
        return [w["name"] for w in registry.active_set(session)]


def deadline() -> str:
    return (utcnow() + timedelta(days=7)).isoformat()


def vote_api(client: TestClient, gov: Gov, pid: int, who: str) -> Any:
    ballot = gov.ballot(pid, who, Choice.YES, utcnow()).model_dump(mode="json")
    return client.post(f"{API}/proposals/{pid}/votes", json=ballot, headers=gov.auth(who))


def cosign(client: TestClient, note: str, signer: Any) -> Any:
    size = int(note.split("\n")[1])
    line = cosignature_line(note, signer)
    return client.post(f"{API}/audit/checkpoints/{size}/cosignatures", json={"cosignature": line})


def test_an_administrator_alone_cannot_add_or_remove_witnesses_through_the_api(
    client: TestClient, gov: Gov, db: Database, settings: Settings
) -> None:
    keys = honest(gov)
    rogue, rogue_vkey = witness_keys("rogue.witness.example")
    attempts = [("admin", gov.world.auth("admin")), ("da-stakeholder-admin", gov.admin_auth("da"))]
    for _, headers in attempts:
        # The direct registration of old is gone ...
        direct = client.post(f"{API}/audit/witnesses", json={"vkey": rogue_vkey}, headers=headers)
        assert direct.status_code == 405
        # ... and neither administrator may even propose a change: only a stakeholder's voter.
        for body in ({"add": rogue_vkey}, {"remove": "da.witness.example"}):
            refused = client.post(
                f"{API}/audit/witnesses/proposals",
                json={**body, "summary": "mine", "deadline": deadline()},
                headers=headers,
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "not_designated_voter"
        generic = client.post(
            f"{API}/proposals",
            json={"action": "witness", "witness": {"add": rogue_vkey}, "summary": "mine",
                  "deadline": deadline()},
            headers=headers,
        )  # fmt: skip
        assert generic.status_code == 403
    # Every refusal is on the record, with who tried (the stakeholder's administrator may open
    # no proposal at all through the general endpoint: permission_denied).
    logged = refusals(db, "not_designated_voter") + refusals(db, "permission_denied")
    assert len(logged) == 6
    assert {e["username"] for e in logged} == {"admin", "da-stakeholder-admin"}
    assert active_names(gov) == ["court.witness.example", "da.witness.example"]
    # The rogue witness's cosignatures are worthless.
    add_entries(db, 2)
    publish(db, settings)
    note = client.get(f"{API}/audit/checkpoint").text
    rejected = cosign(client, note, rogue)
    assert rejected.status_code == 403 and rejected.json()["error"]["code"] == "witness_unknown"
    assert cosign(client, note, keys["da"][0]).json()["cosigners"] == 1


def test_a_quorum_adds_a_witness_and_removes_one_whose_cosignatures_then_stop_counting(
    client: TestClient, gov: Gov, db: Database, settings: Settings
) -> None:
    keys = honest(gov)
    city, city_vkey = witness_keys("city.witness.example")
    opened = client.post(
        f"{API}/audit/witnesses/proposals",
        json={"add": city_vkey, "summary": "the city's witness", "deadline": deadline()},
        headers=gov.auth("city"),
    )
    assert opened.status_code == 201, opened.text
    proposal = opened.json()
    assert proposal["action"] == "witness" and proposal["agreement_id"] is None
    assert proposal["witness"] == {"op": "add", "name": "city.witness.example", "vkey": city_vkey}
    assert proposal["content_hash"] == witness_changes.change_hash(proposal["witness"])
    # One stakeholder's yes is not enough, whatever the board lists as solo actions.
    assert vote_api(client, gov, proposal["id"], "city").status_code == 201
    assert "city.witness.example" not in active_names(gov)
    assert vote_api(client, gov, proposal["id"], "da").status_code == 201
    shown = client.get(f"{API}/proposals/{proposal['id']}", headers=gov.auth("da")).json()
    assert shown["status"] == "applied"
    assert "city.witness.example" in active_names(gov)
    [added] = actions(db, "audit.witness.add")
    assert added["params"]["proposal_id"] == proposal["id"]
    assert added["params"]["content_hash"] == proposal["content_hash"]
    assert actions(db, "proposal.open")[-1]["params"]["witness"] == proposal["witness"]

    add_entries(db, 3)
    publish(db, settings)
    note = client.get(f"{API}/audit/checkpoint").text
    for signer in (keys["da"][0], keys["court"][0], city):
        assert cosign(client, note, signer).status_code == 201
    with db.session() as session:
        assert checkpoints.cosigner_count(session, checkpoints.latest(session)) == 3

    # Removing the court's witness: the DA and the city decide it.
    removal = client.post(
        f"{API}/proposals",
        json={"action": "witness", "witness": {"remove": "court.witness.example"},
              "summary": "the court's key was lost", "deadline": deadline()},
        headers=gov.auth("da"),
    )  # fmt: skip
    assert removal.status_code == 201, removal.text
    for who in ("da", "city"):
        assert vote_api(client, gov, removal.json()["id"], who).status_code == 201
    assert active_names(gov) == ["city.witness.example", "da.witness.example"]
    [removed] = actions(db, "audit.witness.remove")
    assert removed["params"]["witness"] == "court.witness.example"
    with db.session() as session:
        # Its stored cosignature stays (the table is immutable) but no longer counts.
        assert checkpoints.cosigner_count(session, checkpoints.latest(session)) == 2
    refused = cosign(client, note, keys["court"][0])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "witness_unknown"


def test_the_console_cannot_change_witnesses_alone(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    _, vkey = witness_keys("rogue.witness.example")
    change = ["--add", vkey, "--deadline", deadline(), "--summary", "mine", "--db", url]
    # The old direct commands no longer exist.
    assert runner.invoke(audit_cli, ["witness", "add", vkey, "--db", url]).exit_code == 2
    assert runner.invoke(audit_cli, ["witness", "remove", "1", "--db", url]).exit_code == 2
    for who in ([], ["--as", "admin"], ["--as", "da-stakeholder-admin"], ["--as", "nobody"]):
        refused = runner.invoke(audit_cli, ["witness", "propose", *change, *who])
        assert refused.exit_code == 1, refused.output
    logged = [e for e in actions(fresh_db, "audit.witness.propose") if e["outcome"] == "refused"]
    assert [e["username"] for e in logged] == ["system", "admin", "da-stakeholder-admin", "system"]
    assert {e["params"]["via"] for e in logged} == {"cli"}
    both = runner.invoke(
        audit_cli, ["witness", "propose", *change, "--remove", "x", "--as", "da-voter"]
    )
    assert both.exit_code == 1 and "exactly one" in " ".join(both.output.split())
    opened = runner.invoke(audit_cli, ["witness", "propose", *change, "--as", "da-voter"])
    assert opened.exit_code == 0, opened.output
    assert "opened proposal" in opened.output and "--proposal 1" in opened.output
    listed = runner.invoke(governance_cli, ["proposal", "list", "--db", url, "--as", "da-voter"])
    assert "the witnesses" in listed.output
    assert active_names(gov) == []


def test_the_first_witnesses_come_only_with_the_first_board(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    members = [
        str(world.agencies[n]) for n in ("District Attorney's Office", "First Judicial District")
    ]
    _, first = witness_keys("da.witness.example")
    _, late = witness_keys("late.witness.example")
    init = ["board", "init", *[a for m in members for a in ("--member", m)], "--quorum", "2"]
    done = runner.invoke(governance_cli, [*init, "--witness", first, "--db", url])
    assert done.exit_code == 0, done.output
    assert "1 witness(es)" in done.output
    [entry] = actions(fresh_db, "audit.witness.bootstrap")
    assert entry["params"]["witnesses"] == [{"name": "da.witness.example", "vkey": first}]
    again = runner.invoke(governance_cli, [*init, "--witness", late, "--db", url])
    assert again.exit_code == 1
    with fresh_db.session() as session:
        assert [w["name"] for w in registry.active_set(session)] == ["da.witness.example"]


def test_a_bootstrap_never_adds_to_witnesses_already_registered(db: Database, world: World) -> None:
    _, vkey = witness_keys("da.witness.example")
    _, other = witness_keys("other.witness.example")
    data = BoardUpdate(members=[world.agencies["District Attorney's Office"]], quorum=1)
    with db.session() as session:
        registry.install(session, vkey=vkey)
    # Refused as a whole: the board it would have set is rolled back with it.
    with pytest.raises(Forbidden, match="by a quorum"), db.session() as session:
        witness_changes.bootstrap(session, actor=SYSTEM, data=data, vkeys=[other])
    with db.session() as session:
        board = witness_changes.bootstrap(session, actor=SYSTEM, data=data, vkeys=[])
        assert board.version == 1


def witness_proposal(gov: Gov, change: WitnessChange, **extra: Any) -> Proposal:
    with gov.session() as session:
        return open_proposal(
            session,
            actor=gov.voters["da"],
            data=ProposalCreate(
                action=extra.pop("action", ProposalAction.WITNESS),
                witness=change,
                summary="witnesses",
                deadline=gov.at(days=7),
                **extra,
            ),
            now=gov.t0,
        )


def test_witness_proposals_refuse_what_they_cannot_decide(gov: Gov) -> None:
    honest(gov)
    _, vkey = witness_keys("city.witness.example")
    refusals = [
        (WitnessChange(), InvalidInput, "exactly one"),
        (WitnessChange(add=vkey, remove="da.witness.example"), InvalidInput, "exactly one"),
        (WitnessChange(add="garbage+00000000+AAAA"), InvalidInput, "not a C2SP"),
        (WitnessChange(add=witness_keys("da.witness.example")[1]), Conflict, "is or was"),
        (WitnessChange(remove="nobody.example"), NotFound, "no active witness"),
    ]
    for change, error, message in refusals:
        with pytest.raises(error, match=message):
            witness_proposal(gov, change)
    with pytest.raises(Conflict, match="you reviewed"):
        witness_proposal(gov, WitnessChange(add=vkey), content_hash="0" * 64)
    for stray in ({"agreement_id": gov.agreement_id}, {"floor": {"x": 1}}):
        with pytest.raises(InvalidInput, match="witnesses only"):
            witness_proposal(gov, WitnessChange(add=vkey), **stray)
    with pytest.raises(InvalidInput, match="only a proposal with action 'witness'"):
        witness_proposal(gov, WitnessChange(add=vkey), action=ProposalAction.FLOOR)


def decide(gov: Gov, pid: int, *voters: str) -> Proposal:
    for n, who in enumerate(voters):
        with gov.session() as session:
            at = gov.at(minutes=1, seconds=n)
            ballot = gov.ballot(pid, who, Choice.YES, at)
            submit_vote(session, actor=gov.voters[who], data=ballot, now=at)
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        session.expunge(proposal)
        return proposal


def test_a_change_voids_the_other_witness_proposals_and_a_tampered_one_fails(gov: Gov) -> None:
    honest(gov)
    _, city = witness_keys("city.witness.example")
    _, defender = witness_keys("defender.witness.example")
    first = witness_proposal(gov, WitnessChange(add=city)).id
    second = witness_proposal(gov, WitnessChange(remove="court.witness.example")).id
    third = witness_proposal(gov, WitnessChange(add=defender)).id
    assert decide(gov, first, "da", "court").status is ProposalStatus.APPLIED
    # Reviewed against the witnesses before the city's joined: void at once.
    voided = decide(gov, second)
    assert voided.status is ProposalStatus.VOIDED
    assert "the witnesses changed" in (voided.closed_reason or "")
    # The database refuses to change what was proposed; an operator who drops its guard and
    # rewrites the change still gets nothing applied: it no longer matches what was signed.
    fresh = witness_proposal(gov, WitnessChange(add=defender))
    tampered = {"op": "add", "name": "x", "vkey": "y"}
    with gov.session() as session:
        stored = session.get(Proposal, fresh.id)
        assert stored is not None
        stored.floor_content = tampered
        with pytest.raises(DBAPIError, match="append-only"):
            session.flush()
        session.rollback()
    with gov.session() as session:
        guard = "governance_proposals_guard_update"
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text(f"DROP TRIGGER {guard}"))
        else:
            session.execute(text(f"ALTER TABLE governance_proposals DISABLE TRIGGER {guard}"))
        stored = session.get(Proposal, fresh.id)
        assert stored is not None
        stored.floor_content = tampered
    assert decide(gov, fresh.id, "da", "court").status is ProposalStatus.FAILED
    assert "defender.witness.example" not in active_names(gov)
    # Every live witness proposal was voided the moment the first change was made.
    assert decide(gov, third).status is ProposalStatus.VOIDED
    with gov.session() as session:
        events = decisions.tick(session, now=gov.at(minutes=2))
    assert not [e for e in events if e.kind == "proposal.voided"]


def test_a_witness_change_is_never_one_stakeholders_alone(gov: Gov) -> None:
    members = [gov.agencies[w] for w in ("da", "court", "city")]
    solo = BoardUpdate(members=members, quorum=2, solo_actions=[ProposalAction.WITNESS])
    with gov.session() as session, pytest.raises(InvalidInput, match="'witness' always needs"):
        open_proposal(
            session,
            actor=gov.voters["da"],
            data=ProposalCreate(
                action=ProposalAction.BOARD,
                board=solo,
                summary="let any one stakeholder change the witnesses",
                deadline=gov.at(days=7),
            ),
            now=gov.t0,
        )

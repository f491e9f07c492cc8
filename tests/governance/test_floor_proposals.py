"""Issue 10 item 3: the site floor is loosened only by the board's own signed quorum decision.

Tried as the attacker would: one administrator (through the API and the console) trying to let
free text and victims out alone, then the stakeholders deciding it the regular way.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpars.agreements import floor as floors
from openpars.agreements.cli import app as agreement_cli
from openpars.agreements.floor import SiteFloor, loosenings
from openpars.agreements.models import SiteFloorVersion
from openpars.audit.models import AuditEntry
from openpars.db import Database, utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.governance import decisions
from openpars.governance.cli import app as governance_cli
from openpars.governance.quorum import Choice, ProposalAction, QuorumRule
from openpars.governance.schemas import ProposalCreate
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from openpars.records.enums import InvolvementRole
from tests.access.agreements import activate, default_scope
from tests.factories import World, build_world
from tests.governance.helpers import Gov, build_gov
from tests.records.factories import arrest_payload
from tests.records.helpers import API, submit

# build_gov drafts an ICE agreement; the agreement granting what the floor releases is the FBI's.
FBI = "Federal Bureau of Investigation"
# Free text and victims out: what the attacker wants.
LOOSE: dict[str, Any] = {
    **SiteFloor().model_dump(mode="json"),
    "forbidden_arrest_fields": [],
    "forbidden_roles": ["affiant", "complainant", "witness"],
}
# Narrative, the victim's family name: what an agreement would grant once the floor allows it.
GRANTS = default_scope(
    roles=["arrestee", "victim"],
    arrest_fields={**default_scope()["arrest_fields"], "narrative": "visible"},
)


def _floor_proposal(gov: Gov, *, who: str = "da", floor: dict[str, Any] | None = None) -> int:
    with gov.session() as session:
        proposal = open_proposal(
            session,
            actor=gov.voters[who],
            data=ProposalCreate(
                action=ProposalAction.FLOOR,
                floor=floor or LOOSE,
                summary="release free text and victims",
                deadline=utcnow() + timedelta(days=7),
            ),
        )
        return proposal.id


def _vote(gov: Gov, proposal_id: int, who: str) -> Any:
    vote = gov.ballot(proposal_id, who, Choice.YES, utcnow())
    with gov.session() as session:
        return submit_vote(session, actor=gov.voters[who], data=vote)


def _floor_in_force(db: Database) -> SiteFloor:
    with db.session() as session:
        return floors.get_floor(session)


def _fbi_reads(client: TestClient, world: World, arrest_id: int) -> dict[str, Any]:
    response = client.get(
        f"{API}/arrests/{arrest_id}",
        params={"purpose": "warrant-service"},
        headers=world.auth("fbi"),
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# ---- the comparison ----------------------------------------------------------------------------

LOOSER: dict[str, Any] = {
    "forbidden_roles": ["victim", "witness", "complainant"],
    "forbidden_person_fields": ["citizenship"],
    "forbidden_arrest_fields": ["location"],
    "forbid_juveniles": False,
    "allow_wildcards": True,
    "max_results": 501,
}


def test_every_clause_of_the_floor_is_compared() -> None:
    # A clause added to SiteFloor without a comparison would let one account loosen it alone.
    assert set(SiteFloor.model_fields) == {*LOOSER, "forbid_sealed"}
    base = SiteFloor(max_results=500)
    for name, value in LOOSER.items():
        if name == "max_results":
            base, proposed = SiteFloor(max_results=100), SiteFloor(max_results=101)
        else:
            proposed = SiteFloor.model_validate({**base.model_dump(mode="json"), name: value})
        found = loosenings(base, proposed)
        assert [v.field for v in found] == [f"floor.{name}"], name
        # The other way round is a tightening (or nothing): never a loosening.
        assert loosenings(proposed, base) == [], name
    unsealed = SiteFloor.model_construct(**{**dict(SiteFloor()), "forbid_sealed": False})
    assert [v.field for v in loosenings(SiteFloor(), unsealed)] == ["floor.forbid_sealed"]


def test_floor_is_never_a_solo_action(client: TestClient, world: World) -> None:
    rule = QuorumRule(required=2, members=frozenset({1, 2, 3}), solo=frozenset(ProposalAction))
    assert rule.for_action(ProposalAction.SUSPEND).required == 1
    assert rule.for_action(ProposalAction.FLOOR).required == 2
    # An administrator cannot make it one through a board proposal either.
    owners = ["District Attorney's Office", "First Judicial District", "City of Philadelphia"]
    response = client.post(
        "/api/v1/proposals",
        json={
            "action": "board",
            "summary": "floor alone",
            "deadline": (utcnow() + timedelta(days=1)).isoformat(),
            "board": {
                "members": [world.agencies[name] for name in owners],
                "quorum": 2,
                "solo_actions": ["suspend", "floor"],
            },
        },
        headers=world.auth("agreements"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "solo_actions"


# ---- one account alone -------------------------------------------------------------------------


def test_one_admin_cannot_loosen_the_floor_through_the_api(
    client: TestClient, db: Database, world: World
) -> None:
    admin = world.auth("agreements")
    response = client.put(
        "/api/v1/site/floor",
        json={"floor": LOOSE, "reason": "we need the narratives"},
        headers=admin,
    )
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("floor_needs_quorum", "floor.forbidden_roles")
    assert "quorum" in error["message"] and "victim" in error["message"]
    # Even a single clause, the smallest loosening, is refused.
    one = {**SiteFloor().model_dump(mode="json"), "max_results": 500}
    with db.session() as session:
        floors.set_floor(
            session,
            actor=world.principals["agreements"],
            floor=SiteFloor(max_results=20),
            reason="cap",
        )
    raised = client.put(
        "/api/v1/site/floor", json={"floor": one, "reason": "raise the cap"}, headers=admin
    )
    assert raised.status_code == 403
    assert raised.json()["error"]["field"] == "floor.max_results"
    assert client.get("/api/v1/site/floor", headers=admin).json()["version"] == 1
    # And the floor still refuses an agreement granting narrative and victims.
    with db.session() as session, pytest.raises(InvalidInput) as caught:
        activate(session, world, scope=GRANTS)
    assert caught.value.code == "floor_crossed"


def test_one_admin_cannot_loosen_the_floor_at_the_console(
    fresh_db: Database, tmp_path: Path
) -> None:
    with fresh_db.session() as session:
        build_world(session)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(LOOSE), encoding="utf-8")
    result = CliRunner().invoke(
        agreement_cli,
        ["floor", "set", str(path), "--reason", "narratives", "--as", "agreements", "--db", url],
    )
    assert result.exit_code != 0
    assert "floor_needs_quorum" in result.output or "quorum" in result.output
    with fresh_db.session() as session:
        assert session.scalars(select(SiteFloorVersion)).all() == []


def test_a_tightening_by_one_account_takes_effect_at_once(
    client: TestClient, db: Database, world: World
) -> None:
    tighter = {**SiteFloor().model_dump(mode="json"), "max_results": 10}
    tighter["forbidden_person_fields"] = ["citizenship", "phone", "place_of_birth"]
    response = client.put(
        "/api/v1/site/floor",
        json={"floor": tighter, "reason": "hide phone numbers"},
        headers=world.auth("agreements"),
    )
    assert response.status_code == 200, response.text
    assert _floor_in_force(db) == SiteFloor.model_validate(tighter)
    with db.session() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last is not None and last.action == "floor.set"


# ---- through the board -------------------------------------------------------------------------


def test_one_stakeholder_alone_leaves_the_loosening_pending(
    client: TestClient, db: Database, world: World
) -> None:
    gov = build_gov(db, world)
    proposal_id = _floor_proposal(gov)
    receipt = _vote(gov, proposal_id, "da")
    assert receipt.proposal.status.value == "open" and receipt.proposal.tally.needed == 1
    # Time passes, the tick runs: still only one yes, nothing changes.
    with db.session() as session:
        decisions.tick(session, now=utcnow() + timedelta(days=1))
    assert _floor_in_force(db) == SiteFloor()
    with db.session() as session, pytest.raises(InvalidInput) as caught:
        activate(session, world, grantee=FBI, scope=GRANTS)
    assert caught.value.code == "floor_crossed"
    # The deadline passes: failed, never applied.
    with db.session() as session:
        decisions.tick(session, now=utcnow() + timedelta(days=8))
    shown = client.get(f"/api/v1/proposals/{proposal_id}", headers=gov.auth("court")).json()
    assert shown["status"] == "failed" and shown["floor"] == LOOSE
    assert _floor_in_force(db) == SiteFloor()


def test_two_signed_votes_adopt_the_loosening_and_it_takes_effect(
    client: TestClient, db: Database, world: World
) -> None:
    gov = build_gov(db, world)
    arrest_id = int(submit(client, world, arrest_payload()).json()["arrest_id"])
    # Through the API: the proposal names the exact floor, the vote signs its hash as agreement 0.
    opened = client.post(
        "/api/v1/proposals",
        json={
            "action": "floor",
            "floor": LOOSE,
            "summary": "release the narrative and victims to agreements that grant them",
            "deadline": (utcnow() + timedelta(days=7)).isoformat(),
        },
        headers=gov.auth("da"),
    )
    assert opened.status_code == 201, opened.text
    proposal = opened.json()
    assert proposal["agreement_id"] is None
    assert proposal["content_hash"] == floors.floor_hash(SiteFloor.model_validate(LOOSE))
    assert proposal["floor_base_hash"] == floors.floor_hash(SiteFloor())
    _vote(gov, proposal["id"], "da")
    assert _floor_in_force(db) == SiteFloor()
    receipt = _vote(gov, proposal["id"], "court")
    assert receipt.proposal.status.value == "applied"
    assert _floor_in_force(db) == SiteFloor.model_validate(LOOSE)
    shown = client.get("/api/v1/site/floor", headers=world.auth("agreements")).json()
    assert shown["changed_by"] == f"proposal {proposal['id']}"
    # Now an agreement may grant what the board released, and the grantee reads it.
    with db.session() as session:
        activate(session, world, grantee=FBI, scope=GRANTS)
    seen = _fbi_reads(client, world, arrest_id)["arrest"]
    assert seen["narrative"] == arrest_payload()["narrative"]
    roles = {i["role"] for i in seen["involvements"]}
    assert InvolvementRole.VICTIM.value in roles
    with db.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
    assert "proposal.open" in actions and actions.count("vote.cast") == 2


def test_a_vote_on_a_stale_floor_proposal_is_refused(db: Database, world: World) -> None:
    gov = build_gov(db, world)
    proposal_id = _floor_proposal(gov)
    _vote(gov, proposal_id, "da")
    # Meanwhile one administrator tightens the floor (allowed alone): the proposal's comparison
    # no longer holds, so it is void and a second yes cannot adopt it.
    with db.session() as session:
        floors.set_floor(
            session,
            actor=world.principals["agreements"],
            floor=SiteFloor(max_results=50),
            reason="cap",
        )
    with pytest.raises(Conflict) as caught:
        _vote(gov, proposal_id, "court")
    assert caught.value.code == "voting_closed"
    assert "site floor changed" in caught.value.message
    assert _floor_in_force(db) == SiteFloor(max_results=50)
    # A tick records the voiding for good.
    with db.session() as session:
        events = decisions.tick(session, now=utcnow())
    assert [e.kind for e in events if e.proposal_id == proposal_id] == ["proposal.voided"]


def test_a_floor_proposal_is_bound_to_one_subject(db: Database, world: World) -> None:
    gov = build_gov(db, world)
    deadline = utcnow() + timedelta(days=7)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"action": "floor"}, "floor"),
        ({"action": "floor", "floor": LOOSE, "agreement_id": gov.agreement_id}, "agreement_id"),
        ({"action": "adopt", "floor": LOOSE, "agreement_id": gov.agreement_id}, "floor"),
        ({"action": "adopt"}, "agreement_id"),
        ({"action": "floor", "floor": {"forbid_sealed": False}}, "floor.forbid_sealed"),
    ]
    for body, field in cases:
        data = ProposalCreate.model_validate({"summary": "x", "deadline": deadline, **body})
        with gov.session() as session, pytest.raises(InvalidInput) as caught:
            open_proposal(session, actor=gov.voters["da"], data=data)
        assert caught.value.field == field, body
    with gov.session() as session, pytest.raises(Conflict) as unchanged:
        open_proposal(
            session,
            actor=gov.voters["da"],
            data=ProposalCreate(
                action=ProposalAction.FLOOR, floor={}, summary="x", deadline=deadline
            ),
        )
    assert unchanged.value.code == "floor_unchanged"
    # An outside agency is no stakeholder: it cannot even open one.
    with gov.session() as session, pytest.raises(Forbidden):
        open_proposal(
            session,
            actor=world.principals["ice"],
            data=ProposalCreate(
                action=ProposalAction.FLOOR, floor=LOOSE, summary="x", deadline=deadline
            ),
        )


def test_the_whole_floor_decision_at_the_console(fresh_db: Database, tmp_path: Path) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    url = fresh_db.bind.engine.url.render_as_string(hide_password=False)
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(LOOSE), encoding="utf-8")
    opened = CliRunner().invoke(
        governance_cli,
        [
            *("proposal", "open", "--action", "floor", "--floor", str(path)),
            *("--summary", "free text", "--deadline", (utcnow() + timedelta(days=7)).isoformat()),
            *("--as", "agreements", "--db", url),
        ],
    )
    assert opened.exit_code == 0, opened.output
    assert "the site floor" in opened.output and "openpars vote sign" in opened.output
    with fresh_db.session() as session:
        proposal_id = max(p.id for p in session.scalars(select(decisions.Proposal)))
    _vote(gov, proposal_id, "city")
    assert _floor_in_force(fresh_db) == SiteFloor()
    _vote(gov, proposal_id, "court")
    assert _floor_in_force(fresh_db) == SiteFloor.model_validate(LOOSE)

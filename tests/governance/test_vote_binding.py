"""Attack 6: a signed vote used for something its signer did not decide.

The statement (openpars-vote/v2) binds the action, its times, the stakeholder and the key; each
mismatch is refused with its own field, through the service and through the real API, and
nothing is recorded.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpars.errors import Conflict, DomainError, Forbidden
from openpars.governance import board, signing
from openpars.governance.cli import app
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import KeyCreate, SignedVote
from openpars.governance.votes import submit_vote
from tests.governance.helpers import Gov, rows


def submit(gov: Gov, who: str, vote: SignedVote, minutes: float) -> ProposalStatus:
    with gov.session() as session:
        submit_vote(session, actor=gov.voters[who], data=vote, now=gov.at(minutes=minutes))
        proposal = session.get(Proposal, vote.proposal_id)
        assert proposal is not None
        return proposal.status


def refused(gov: Gov, who: str, vote: SignedVote, minutes: float) -> DomainError:
    with gov.session() as session:
        before = rows(session)
    with pytest.raises(DomainError) as caught:
        submit(gov, who, vote, minutes)
    with gov.session() as session:
        assert rows(session) == before
    return caught.value


def adopted(gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT)
    submit(gov, "da", gov.ballot(pid, "da", Choice.YES, gov.at(seconds=30)), 1)
    assert submit(gov, "city", gov.ballot(pid, "city", Choice.YES, gov.at(minutes=1)), 1) is (
        ProposalStatus.APPLIED
    )


def test_a_yes_for_adopt_is_no_yes_for_terminate_of_the_same_version(gov: Gov) -> None:
    adopted(gov)
    terminate = gov.propose(
        ProposalAction.TERMINATE, now=gov.at(minutes=2), effective_at=gov.at(days=30)
    )
    with gov.session() as session:
        proposal = session.get(Proposal, terminate)
        assert proposal is not None and proposal.content_hash == gov.content_hash()
    # The court believes it approves an adoption of this very version.
    vote = gov.ballot(
        terminate, "court", Choice.YES, gov.at(minutes=3), action=ProposalAction.ADOPT
    )
    error = refused(gov, "court", vote, 3)
    assert isinstance(error, Conflict)
    assert (error.code, error.field) == ("statement_mismatch", "action")
    assert "'action adopt'" in error.message and "'action terminate'" in error.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"effective_at": None}, "effective_at"),
        ({"effective_at": "days=60"}, "effective_at"),
        ({"new_expires_at": "days=800"}, "new_expires_at"),
        ({"new_expires_at": None}, "new_expires_at"),
        ({"stakeholder_id": "court"}, "stakeholder_id"),
    ],
)
def test_other_times_or_another_stakeholder_are_refused(
    gov: Gov, change: dict[str, Any], field: str
) -> None:
    adopted(gov)
    pid = gov.propose(
        ProposalAction.RENEW,
        now=gov.at(minutes=2),
        effective_at=gov.at(days=30),
        new_expires_at=gov.at(days=700),
    )
    overrides: dict[str, Any] = {}
    for name, value in change.items():
        if value is None:
            overrides[name] = None
        elif name == "stakeholder_id":
            overrides[name] = gov.agencies[value]
        else:
            overrides[name] = gov.at(days=int(value.split("=")[1]))
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=3), **overrides)
    error = refused(gov, "da", vote, 3)
    assert (error.code, error.field) == ("statement_mismatch", field)
    # The same vote, signed over what the proposal says, counts.
    assert submit(gov, "da", gov.ballot(pid, "da", Choice.YES, gov.at(minutes=4)), 4) is (
        ProposalStatus.OPEN
    )


def test_the_key_line_is_the_key_that_signed(gov: Gov) -> None:
    pid = gov.propose()
    # A second DA key, registered by the DA's own administrator.
    second = signing.load_private_pem(signing.generate_private_pem())
    with gov.session() as session:
        board.register_key(
            session,
            actor=gov.admins["da"],
            data=KeyCreate(public_key=signing.public_pem(second).decode(), label="da spare"),
        )
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    # Naming the spare key for bytes the first key signed: the rebuilt bytes do not verify.
    spare = signing.fingerprint(signing.public_raw(second))
    renamed = vote.model_copy(update={"key_fingerprint": spare})
    assert refused(gov, "da", renamed, 1).code == "signature_invalid"
    # Naming the court's key: not the DA's.
    court = signing.fingerprint(signing.public_raw(gov.keys["court"]))
    error = refused(gov, "da", vote.model_copy(update={"key_fingerprint": court}), 1)
    assert isinstance(error, Forbidden)
    assert (error.code, error.field) == ("key_not_registered", "key_fingerprint")


def v1_document(gov: Gov, pid: int, who: str) -> dict[str, Any]:
    """A vote in the first format, signed correctly by the stakeholder's own key."""
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        statement = signing.VoteStatementV1(
            proposal_id=pid,
            agreement_id=proposal.agreement_id or 0,
            version_hash=proposal.content_hash,
            choice=Choice.YES,
            rationale_sha256=signing.rationale_digest("old client"),
            at=gov.at(minutes=1),
        )
    private = gov.keys[who]
    return {
        "format": "openpars-vote/v1",
        "proposal_id": pid,
        "agreement_id": statement.agreement_id,
        "version_hash": statement.version_hash,
        "choice": "yes",
        "rationale": "old client",
        "at": signing.format_at(statement.at),
        "key_fingerprint": signing.fingerprint(signing.public_raw(private)),
        "signature": signing.encode_b64(private.sign(statement.encode())),
    }


def post(client: TestClient, gov: Gov, who: str, vote: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/proposals/{vote['proposal_id']}/votes", json=vote, headers=gov.auth(who)
    )


def test_attack_6_over_http(client: TestClient, gov: Gov) -> None:
    adopted(gov)
    terminate = gov.propose(ProposalAction.TERMINATE, now=gov.at(minutes=2))
    now = gov.t0 + timedelta(minutes=3)
    cases = [
        (gov.ballot(terminate, "court", Choice.YES, now, action=ProposalAction.ADOPT), "action"),
        (gov.ballot(terminate, "court", Choice.YES, now, effective_at=now), "effective_at"),
        (
            gov.ballot(terminate, "court", Choice.YES, now, new_expires_at=gov.at(days=9)),
            "new_expires_at",
        ),
        (
            gov.ballot(terminate, "court", Choice.YES, now, stakeholder_id=gov.agencies["city"]),
            "stakeholder_id",
        ),
    ]
    with gov.session() as session:
        before = rows(session)
    for vote, field in cases:
        response = post(client, gov, "court", vote.model_dump(mode="json"))
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("statement_mismatch", field)
        # The refusal is audited, and the envelope names its entry like the header does.
        assert str(error["audit_entry"]) == response.headers["OpenPARS-Audit-Entry"]
    old = post(client, gov, "court", v1_document(gov, terminate, "court"))
    assert old.status_code == 422, old.text
    error = old.json()["error"]
    assert error["field"] == "format"
    assert "re-sign with the current 'openpars vote sign'" in error["message"]
    with gov.session() as session:
        assert rows(session) == before
    good = gov.ballot(terminate, "court", Choice.YES, now)
    assert post(client, gov, "court", good.model_dump(mode="json")).status_code == 201


def test_a_v1_vote_at_the_console(gov: Gov, tmp_path: Path) -> None:
    pid = gov.propose()
    path = tmp_path / "old.json"
    path.write_text(json.dumps(v1_document(gov, pid, "da")), encoding="utf-8")
    # Refused before any database is opened: the file alone is wrong.
    result = CliRunner().invoke(app, ["vote", "submit", str(path), "--as", "da-voter"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "re-sign with the current 'openpars vote sign'" in message
    assert "(field: format)" in message

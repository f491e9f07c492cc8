"""Edge cases of signed votes: changes, replays, wrong keys and voters, versions, bad input."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from openpars.agreements import service as agreements
from openpars.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from openpars.governance import board, repository
from openpars.governance.decisions import tick
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import ProposalCreate, SignedVote
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from tests.governance.helpers import Gov, add_voter, document, rows


def submit(gov: Gov, actor: Principal, vote: SignedVote, minutes: float) -> Proposal:
    with gov.session() as session:
        submit_vote(session, actor=actor, data=vote, now=gov.at(minutes=minutes))
        proposal = session.get(Proposal, vote.proposal_id)
        assert proposal is not None
        return proposal


def refused(gov: Gov, actor: Principal, vote: SignedVote, minutes: float) -> DomainError:
    """Submit a vote that must be refused; check that nothing was recorded."""
    with gov.session() as session:
        before = rows(session)
    with pytest.raises(DomainError) as caught:
        submit(gov, actor, vote, minutes)
    with gov.session() as session:
        assert rows(session) == before
    return caught.value


def test_a_stakeholder_changes_its_vote_and_every_cast_is_kept(gov: Gov) -> None:
    pid = gov.propose()
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)), 1)
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.NO, gov.at(minutes=2)), 2)
    # Two yes votes from one stakeholder would approve 2 of 3 if counted twice; they are not.
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.YES, gov.at(minutes=3)), 3)
    proposal = submit(
        gov, gov.voters["city"], gov.ballot(pid, "city", Choice.NO, gov.at(minutes=4)), 4
    )
    assert proposal.status is ProposalStatus.OPEN
    proposal = submit(
        gov, gov.voters["court"], gov.ballot(pid, "court", Choice.YES, gov.at(minutes=5)), 5
    )
    assert proposal.status is ProposalStatus.APPLIED
    with gov.session() as session:
        votes = repository.votes_of(session, pid)
        assert [(v.stakeholder_id, v.choice) for v in votes] == [
            (gov.agencies["da"], Choice.YES),
            (gov.agencies["da"], Choice.NO),
            (gov.agencies["da"], Choice.YES),
            (gov.agencies["city"], Choice.NO),
            (gov.agencies["court"], Choice.YES),
        ]


def test_a_change_to_no_withdraws_a_yes(gov: Gov) -> None:
    pid = gov.propose()
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)), 1)
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.ABSTAIN, gov.at(minutes=2)), 2)
    proposal = submit(
        gov, gov.voters["court"], gov.ballot(pid, "court", Choice.YES, gov.at(minutes=3)), 3
    )
    assert proposal.status is ProposalStatus.OPEN


def test_votes_after_the_proposal_closed_are_refused(gov: Gov) -> None:
    pid = gov.propose()
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)), 1)
    submit(gov, gov.voters["court"], gov.ballot(pid, "court", Choice.YES, gov.at(minutes=2)), 2)
    error = refused(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.NO, gov.at(minutes=3)), 3)
    assert isinstance(error, Conflict)
    assert error.code == "voting_closed"
    assert "applied" in error.message


def test_a_user_who_is_not_a_designated_voter(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    # A DA user without the voter role, with the DA's own valid signature.
    error = refused(gov, gov.world.principals["charging"], vote, 1)
    assert isinstance(error, Forbidden)
    assert error.code == "not_designated_voter"
    assert "role 'voter'" in error.message
    # A voter of an agency that is not on the board.
    with gov.session() as session:
        # Its own administrator, bootstrapped at the console, makes the voter.
        its_admin = add_voter(session, gov.world, "defender", role=Role.STAKEHOLDER_ADMIN)
        outsider = add_voter(session, gov.world, "defender", by=its_admin)
    error = refused(gov, outsider, vote, 1)
    assert error.code == "not_designated_voter"
    assert "not a stakeholder" in error.message


def test_a_vote_signed_with_the_wrong_key(gov: Gov) -> None:
    pid = gov.propose()
    # The court's registered key, submitted by the DA's voter: not the DA's key.
    court_signed = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1), key="court")
    error = refused(gov, gov.voters["da"], court_signed, 1)
    assert isinstance(error, Forbidden)
    assert error.code == "key_not_registered"
    # Claiming the DA's key for a signature made with the court's key.
    da_fingerprint = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)).key_fingerprint
    forged = court_signed.model_copy(update={"key_fingerprint": da_fingerprint})
    error = refused(gov, gov.voters["da"], forged, 1)
    assert error.code == "signature_invalid"
    assert error.field == "signature"
    # A signature over other bytes (the choice changed after signing).
    tampered = gov.ballot(pid, "da", Choice.NO, gov.at(minutes=1)).model_copy(
        update={"choice": Choice.YES}
    )
    assert refused(gov, gov.voters["da"], tampered, 1).code == "signature_invalid"


def test_a_revoked_key_signs_no_more_votes(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    with gov.session() as session:
        key = repository.key_by_fingerprint(session, vote.key_fingerprint)
        assert key is not None
        board.revoke_key(session, actor=gov.admins["da"], key_id=key.id, reason="laptop lost")
    assert refused(gov, gov.voters["da"], vote, 1).code == "key_revoked"


def test_a_vote_over_a_different_version(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1), version_hash="0" * 64)
    error = refused(gov, gov.voters["da"], vote, 1)
    assert isinstance(error, Conflict)
    assert (error.code, error.field) == ("version_mismatch", "version_hash")


def test_replayed_votes(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.NO, gov.at(minutes=2))
    submit(gov, gov.voters["da"], vote, 2)
    error = refused(gov, gov.voters["da"], vote, 3)
    assert (error.code, error.field) == ("replayed_vote", "signature")
    # An older signed vote (or one at the same instant) cannot override a newer one.
    older = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    error = refused(gov, gov.voters["da"], older, 3)
    assert (error.code, error.field) == ("replayed_vote", "at")
    same = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=2))
    assert refused(gov, gov.voters["da"], same, 3).code == "replayed_vote"


def test_agreement_edited_while_a_vote_is_open(gov: Gov) -> None:
    pid = gov.propose()
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)), 1)
    court_vote = gov.ballot(pid, "court", Choice.YES, gov.at(minutes=3))
    with gov.session() as session:
        agreements.update_agreement(
            session,
            actor=gov.world.principals["agreements"],
            agreement_id=gov.agreement_id,
            data=document(
                gov.world,
                start=gov.t0,
                end=gov.t0 + timedelta(days=365),
                terms="Arrestees only. Amended.",
            ),
            reason="terms amended",
        )
    error = refused(gov, gov.voters["court"], court_vote, 3)
    assert error.code == "voting_closed"
    assert "changed to version 2" in error.message
    with gov.session() as session:
        events = tick(session, now=gov.at(minutes=4))
        assert [(e.kind, e.proposal_id) for e in events] == [("proposal.voided", pid)]
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.status is ProposalStatus.VOIDED
        assert len(repository.votes_of(session, pid)) == 1
    # A new proposal binds to the new version and is decided afresh.
    new = gov.propose(now=gov.at(minutes=5))
    assert new != pid
    with gov.session() as session:
        fresh = session.get(Proposal, new)
        assert fresh is not None
        assert (fresh.agreement_version, fresh.content_hash) == (2, gov.content_hash())


def test_a_vote_after_the_deadline(gov: Gov) -> None:
    pid = gov.propose(deadline=gov.at(hours=1))
    late = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=59))
    error = refused(gov, gov.voters["da"], late, 61)
    assert (error.code, error.field) == ("voting_closed", "deadline")
    signed_late = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=61))
    assert refused(gov, gov.voters["da"], signed_late, 59).field == "deadline"


def test_vote_times_outside_the_window(gov: Gov) -> None:
    pid = gov.propose(now=gov.at(minutes=10))
    before_open = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=5))
    assert refused(gov, gov.voters["da"], before_open, 11).field == "at"
    future = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=30))
    error = refused(gov, gov.voters["da"], future, 11)
    assert (error.field, "in the future" in error.message) == ("at", True)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"\x00" * 63).decode(), "63 bytes"),
        (base64.b64encode(b"\x00" * 65).decode(), "65 bytes"),
    ],
)
def test_malformed_signatures(gov: Gov, signature: str, message: str) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    error = refused(gov, gov.voters["da"], vote.model_copy(update={"signature": signature}), 1)
    assert isinstance(error, InvalidInput)
    assert error.field == "signature"
    assert message in error.message


def test_a_rationale_over_the_limit(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1), rationale="x" * 4001)
    error = refused(gov, gov.voters["da"], vote, 1)
    assert (error.field, "4001 characters" in error.message) == ("rationale", True)
    at_limit = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1), rationale="y" * 4000)
    submit(gov, gov.voters["da"], at_limit, 1)


def test_an_unknown_proposal(gov: Gov) -> None:
    pid = gov.propose()
    vote = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1)).model_copy(
        update={"proposal_id": 999_999}
    )
    error = refused(gov, gov.voters["da"], vote, 1)
    assert isinstance(error, NotFound)
    assert error.field == "proposal_id"


def test_bad_proposals_record_nothing(gov: Gov) -> None:
    def attempt(**fields: object) -> DomainError:
        data = {
            "agreement_id": gov.agreement_id,
            "action": ProposalAction.ADOPT,
            "summary": "adopt",
            "deadline": gov.at(days=7),
            **fields,
        }
        with gov.session() as session:
            before = rows(session)
        with pytest.raises(DomainError) as caught, gov.session() as session:
            open_proposal(
                session,
                actor=gov.voters["da"],
                data=ProposalCreate.model_validate(data),
                now=gov.at(minutes=1),
            )
        with gov.session() as session:
            assert rows(session) == before
        return caught.value

    assert attempt(agreement_id=424242).field == "agreement_id"
    past = attempt(deadline=gov.at(minutes=-5))
    assert (past.field, "in the past" in past.message) == ("deadline", True)
    assert attempt(content_hash="f" * 64).field == "content_hash"
    assert attempt(action=ProposalAction.RENEW).field == "new_expires_at"
    assert attempt(new_expires_at=gov.at(days=900)).field == "new_expires_at"
    assert attempt(effective_at=gov.at(days=-1)).field == "effective_at"
    # A DA user who is neither a designated voter nor an agreement manager.
    with pytest.raises(Forbidden), gov.session() as session:
        open_proposal(
            session,
            actor=gov.world.principals["charging"],
            data=ProposalCreate(
                agreement_id=gov.agreement_id,
                action=ProposalAction.ADOPT,
                summary="adopt",
                deadline=gov.at(days=7),
            ),
            now=gov.at(minutes=1),
        )


def test_malformed_fields_of_a_signed_vote(gov: Gov) -> None:
    pid = gov.propose()
    good = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1))
    blank = gov.ballot(pid, "da", Choice.YES, gov.at(minutes=1), rationale="   ")
    assert refused(gov, gov.voters["da"], blank, 1).field == "rationale"
    upper = good.model_copy(update={"version_hash": good.version_hash.upper()})
    assert refused(gov, gov.voters["da"], upper, 1).field == "version_hash"
    other = good.model_copy(update={"agreement_id": good.agreement_id + 1})
    error = refused(gov, gov.voters["da"], other, 1)
    assert (error.code, error.field) == ("version_mismatch", "agreement_id")
    no_zone = good.model_copy(update={"at": "2026-08-01T12:00:00"})
    assert refused(gov, gov.voters["da"], no_zone, 1).field == "at"


def test_evaluating_a_closed_proposal_does_nothing(gov: Gov) -> None:
    from openpars.governance.decisions import evaluate

    pid = gov.propose(deadline=gov.at(minutes=30))
    with gov.session() as session:
        tick(session, now=gov.at(hours=1))
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.status is ProposalStatus.FAILED
        assert evaluate(session, proposal, now=gov.at(hours=2)) == []


def test_a_scope_below_the_floor_is_refused_when_proposed(gov: Gov) -> None:
    from openpars.identity.principal import SYSTEM
    from tests.governance.helpers import scope

    with gov.session() as session:
        draft = agreements.create_agreement(
            session,
            actor=SYSTEM,
            data=document(
                gov.world,
                start=gov.t0,
                end=gov.t0 + timedelta(days=30),
                name="FBI agreement with victims",
                grantee_agency_id=gov.world.agencies["Federal Bureau of Investigation"],
                scope={**scope(), "roles": ["arrestee", "victim"]},
            ),
        )
        before = rows(session)
    with pytest.raises(DomainError) as caught, gov.session() as session:
        open_proposal(
            session,
            actor=gov.voters["da"],
            data=ProposalCreate(
                agreement_id=draft.id,
                action=ProposalAction.ADOPT,
                summary="adopt",
                deadline=gov.at(days=7),
            ),
            now=gov.at(minutes=1),
        )
    assert caught.value.field is not None
    assert caught.value.field.startswith("scope.roles")
    assert "site floor" in caught.value.message
    with gov.session() as session:
        assert rows(session) == before


def test_votes_are_append_only(gov: Gov) -> None:
    from openpars.governance.models import AppendOnlyError, Vote

    pid = gov.propose()
    submit(gov, gov.voters["da"], gov.ballot(pid, "da", Choice.NO, gov.at(minutes=1)), 1)
    with gov.session() as session:
        vote = session.scalars(select(Vote)).one()
        vote.choice = Choice.YES
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()
        session.delete(session.scalars(select(Vote)).one())
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()

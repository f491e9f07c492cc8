"""Proposals decided by signed votes and applied to agreements on time (both backends)."""

from __future__ import annotations

from openpars.agreements.models import AgreementStatus
from openpars.agreements.service import grant_for
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.votes import submit_vote
from tests.governance.helpers import Gov, agreement


def cast(gov: Gov, proposal_id: int, who: str, choice: Choice, minutes: float) -> Proposal:
    """Sign and submit a vote at t0 + minutes; returns the proposal after the vote."""
    moment = gov.at(minutes=minutes)
    vote = gov.ballot(proposal_id, who, choice, moment)
    with gov.session() as session:
        submit_vote(session, actor=gov.voters[who], data=vote, now=moment)
        proposal = session.get(Proposal, proposal_id)
        assert proposal is not None
        return proposal


def test_quorum_reached_early_adopts_at_once(gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT)
    assert cast(gov, pid, "da", Choice.YES, 1).status is ProposalStatus.OPEN
    proposal = cast(gov, pid, "court", Choice.YES, 2)
    assert proposal.status is ProposalStatus.APPLIED
    assert proposal.decided_at == gov.at(minutes=2)
    assert proposal.final_tally == {
        "yes": sorted([gov.agencies["da"], gov.agencies["court"]]),
        "no": [],
        "abstain": [],
    }
    with gov.session() as session:
        assert agreement(session, gov).status is AgreementStatus.ACTIVE
        ice = gov.world.principals["ice"]
        assert grant_for(session, principal=ice, at=gov.at(minutes=3)) is not None

"""Issue 11, attack 3: only the board's quorum lifts a suspension another stakeholder imposed."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from openpars.agreements import killswitch
from openpars.agreements.models import AgreementStatus, Resumption, SuspensionTarget
from openpars.agreements.service import grant_for
from openpars.errors import Forbidden
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.quorum import Choice, ProposalAction, QuorumRule
from openpars.governance.votes import submit_vote
from tests.governance.helpers import Gov, agreement


def vote(gov: Gov, pid: int, who: str, choice: Choice, at: datetime) -> Proposal:
    """Sign and submit at ``at`` (also the server's clock)."""
    with gov.session() as session:
        submit_vote(session, actor=gov.voters[who], data=gov.ballot(pid, who, choice, at), now=at)
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        return proposal


def has_access(gov: Gov, at: datetime) -> bool:
    with gov.session() as session:
        return grant_for(session, principal=gov.world.principals["ice"], at=at) is not None


def adopt_and_cut(gov: Gov) -> int:
    """Adopt the agreement 2 of 3, then the DA's voter pulls the kill switch alone."""
    pid = gov.propose(ProposalAction.ADOPT)
    vote(gov, pid, "da", Choice.YES, gov.at(seconds=30))
    assert vote(gov, pid, "city", Choice.YES, gov.at(minutes=1)).status is ProposalStatus.APPLIED
    with gov.session() as session:
        cut = killswitch.suspend(
            session,
            actor=gov.voters["da"],
            agreement_id=gov.agreement_id,
            target=SuspensionTarget.AGREEMENT,
            reason="queries outside stated purpose",
            at=gov.at(minutes=2),
        )
        assert cut.stakeholder_id == gov.agencies["da"]
        return cut.id


def test_a_quorum_resume_decision_lifts_the_das_suspension(gov: Gov) -> None:
    sid = adopt_and_cut(gov)
    assert not has_access(gov, gov.at(minutes=3))
    # The court and the city cannot lift it alone, but as a quorum they decide to.
    with gov.session() as session, pytest.raises(Forbidden) as refused:
        killswitch.resume(
            session, actor=gov.voters["court"], suspension_id=sid, reason="we disagree"
        )
    assert refused.value.code == "not_imposing_stakeholder"
    pid = gov.propose(ProposalAction.RESUME, now=gov.at(minutes=4), actor=gov.voters["city"])
    assert vote(gov, pid, "court", Choice.YES, gov.at(minutes=5)).status is ProposalStatus.OPEN
    # One yes is not enough for a resumption: it is never a solo action.
    assert not has_access(gov, gov.at(minutes=6))
    assert vote(gov, pid, "city", Choice.YES, gov.at(minutes=7)).status is ProposalStatus.APPLIED
    assert has_access(gov, gov.at(minutes=8))
    with gov.session() as session:
        assert agreement(session, gov).status is AgreementStatus.ACTIVE
        lifted = session.scalars(select(Resumption).where(Resumption.suspension_id == sid)).one()
        assert lifted.resumed_by == f"proposal {pid}"
        assert lifted.resumed_at == gov.at(minutes=7)


def test_a_board_suspension_and_the_kill_switch_both_yield_to_one_resume(gov: Gov) -> None:
    sid = adopt_and_cut(gov)
    solo = gov.propose(ProposalAction.SUSPEND, now=gov.at(minutes=3), actor=gov.voters["court"])
    assert vote(gov, solo, "court", Choice.YES, gov.at(minutes=4)).status is ProposalStatus.APPLIED
    pid = gov.propose(ProposalAction.RESUME, now=gov.at(minutes=5), actor=gov.voters["city"])
    vote(gov, pid, "court", Choice.YES, gov.at(minutes=6))
    assert vote(gov, pid, "city", Choice.YES, gov.at(minutes=7)).status is ProposalStatus.APPLIED
    assert has_access(gov, gov.at(minutes=8))
    with gov.session() as session:
        assert session.scalars(select(Resumption).where(Resumption.suspension_id == sid)).one()


def test_resume_is_never_a_solo_action() -> None:
    # Even a board that lists it as solo decides a resumption by its full quorum.
    rule = QuorumRule(
        required=2,
        members=frozenset({1, 2, 3}),
        solo=frozenset({ProposalAction.SUSPEND, ProposalAction.RESUME}),
    )
    assert rule.for_action(ProposalAction.SUSPEND).required == 1
    assert rule.for_action(ProposalAction.RESUME).required == 2

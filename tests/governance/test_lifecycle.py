"""Decisions over time: deadlines, expiry during a renewal vote, concurrent proposals, reminders."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from openpars.agreements.models import AgreementEvent, AgreementStatus, AgreementVersion
from openpars.agreements.service import grant_for
from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.errors import Conflict, Forbidden
from openpars.governance.decisions import tick
from openpars.governance.models import Proposal, ProposalStatus, RenewalNotice
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.governance.service import open_proposal, show_proposal
from openpars.governance.timeline import governance_timeline
from openpars.governance.votes import submit_vote
from tests.factories import World
from tests.governance.helpers import Gov, agreement, build_gov, register


def vote(gov: Gov, pid: int, who: str, choice: Choice, at: datetime) -> Proposal:
    """Sign and submit at ``at`` (also the server's clock)."""
    with gov.session() as session:
        submit_vote(session, actor=gov.voters[who], data=gov.ballot(pid, who, choice, at), now=at)
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        return proposal


def adopt(gov: Gov) -> None:
    """Adopt the agreement by a 2-of-3 vote at t0 + 1 minute."""
    pid = gov.propose(ProposalAction.ADOPT)
    vote(gov, pid, "da", Choice.YES, gov.at(seconds=30))
    assert vote(gov, pid, "city", Choice.YES, gov.at(minutes=1)).status is ProposalStatus.APPLIED


def status(gov: Gov) -> AgreementStatus:
    with gov.session() as session:
        return agreement(session, gov).status


def has_access(gov: Gov, at: datetime) -> bool:
    with gov.session() as session:
        return grant_for(session, principal=gov.world.principals["ice"], at=at) is not None


def test_deadline_passes_without_quorum(gov: Gov) -> None:
    pid = gov.propose(deadline=gov.at(hours=1))
    vote(gov, pid, "da", Choice.YES, gov.at(minutes=10))
    with gov.session() as session:
        assert tick(session, now=gov.at(minutes=59)) == []
        events = tick(session, now=gov.at(hours=1))
    assert [(e.kind, e.proposal_id) for e in events] == [("proposal.failed", pid)]
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.status is ProposalStatus.FAILED
        assert proposal.closed_reason is not None
        assert "1 yes of 2 needed; 2 did not vote" in proposal.closed_reason
        assert tick(session, now=gov.at(hours=2)) == []  # idempotent
    assert status(gov) is AgreementStatus.DRAFT


def test_a_blocking_no_rejects_at_the_deadline(gov: Gov) -> None:
    pid = gov.propose(deadline=gov.at(hours=1))
    vote(gov, pid, "da", Choice.NO, gov.at(minutes=1))
    vote(gov, pid, "court", Choice.NO, gov.at(minutes=2))
    with gov.session() as session:
        assert (
            show_proposal(
                session, actor=gov.voters["city"], proposal_id=pid, now=gov.at(minutes=3)
            ).status
            is ProposalStatus.OPEN
        )
        events = tick(session, now=gov.at(hours=1, seconds=1))
    assert [e.kind for e in events] == ["proposal.rejected"]


def test_a_solo_suspension_takes_effect_at_its_instant(gov: Gov) -> None:
    adopt(gov)
    pid = gov.propose(ProposalAction.SUSPEND, now=gov.at(minutes=2), effective_at=gov.at(hours=2))
    proposal = vote(gov, pid, "court", Choice.YES, gov.at(minutes=3))
    assert proposal.status is ProposalStatus.APPROVED
    assert proposal.effective_instant == gov.at(hours=2)
    assert has_access(gov, gov.at(hours=1))
    with gov.session() as session:
        assert tick(session, now=gov.at(hours=1)) == []
        events = tick(session, now=gov.at(hours=2))
    assert [e.kind for e in events] == ["proposal.applied"]
    assert status(gov) is AgreementStatus.SUSPENDED
    assert not has_access(gov, gov.at(hours=2, seconds=1))


def test_expiry_while_a_renewal_vote_is_open(db: Database, world: World) -> None:
    gov = build_gov(db, world, days=10)
    adopt(gov)
    pid = gov.propose(
        ProposalAction.RENEW,
        now=gov.at(days=1),
        deadline=gov.at(days=30),
        new_expires_at=gov.at(days=375),
    )
    vote(gov, pid, "da", Choice.YES, gov.at(days=2))
    assert has_access(gov, gov.at(days=10, microseconds=-1))
    # Access ends at expiry by itself, tick or no tick.
    assert not has_access(gov, gov.at(days=10))
    with gov.session() as session:
        events = tick(session, now=gov.at(days=11))
    assert ("agreement.expired", None) in [(e.kind, e.proposal_id) for e in events]
    assert status(gov) is AgreementStatus.EXPIRED
    assert not has_access(gov, gov.at(days=11))
    # The renewal passes later: access resumes, until the new expiry.
    assert vote(gov, pid, "court", Choice.YES, gov.at(days=12)).status is ProposalStatus.APPLIED
    assert status(gov) is AgreementStatus.ACTIVE
    assert has_access(gov, gov.at(days=12, minutes=1))
    assert not has_access(gov, gov.at(days=375))


def test_two_proposals_open_on_one_agreement(gov: Gov) -> None:
    adopt(gov)
    suspend = gov.propose(ProposalAction.SUSPEND, now=gov.at(minutes=2))
    renew = gov.propose(
        ProposalAction.RENEW, now=gov.at(minutes=2), new_expires_at=gov.at(days=700)
    )
    # A yes on one proposal is not a yes on the other.
    assert vote(gov, renew, "da", Choice.YES, gov.at(minutes=3)).status is ProposalStatus.OPEN
    assert vote(gov, suspend, "city", Choice.NO, gov.at(minutes=4)).status is ProposalStatus.OPEN
    # Suspension is a solo action: one yes suffices, and it leaves the version unchanged.
    assert (
        vote(gov, suspend, "court", Choice.YES, gov.at(minutes=5)).status is ProposalStatus.APPLIED
    )
    assert status(gov) is AgreementStatus.SUSPENDED
    assert vote(gov, renew, "city", Choice.YES, gov.at(minutes=6)).status is ProposalStatus.APPLIED
    with gov.session() as session:
        current = agreement(session, gov)
        assert current.status is AgreementStatus.SUSPENDED
        assert current.in_force_until == gov.at(days=700)


def test_an_applied_renewal_voids_other_proposals_on_the_old_version(gov: Gov) -> None:
    adopt(gov)
    renew = gov.propose(
        ProposalAction.RENEW, now=gov.at(minutes=2), new_expires_at=gov.at(days=700)
    )
    terminate = gov.propose(ProposalAction.TERMINATE, now=gov.at(minutes=2))
    vote(gov, terminate, "city", Choice.YES, gov.at(minutes=3))
    vote(gov, renew, "da", Choice.YES, gov.at(minutes=4))
    vote(gov, renew, "court", Choice.YES, gov.at(minutes=5))
    with gov.session() as session:
        voided = session.get(Proposal, terminate)
        assert voided is not None
        assert voided.status is ProposalStatus.VOIDED
        assert voided.closed_reason is not None
        assert "version 2" in voided.closed_reason


def test_a_board_change_voids_proposals_opened_under_the_old_board(gov: Gov) -> None:
    first = gov.propose(ProposalAction.ADOPT)
    with gov.session() as session:
        register(session, gov, "pretrial")
        register(session, gov, "defender")
        grown = open_proposal(
            session,
            actor=gov.voters["court"],
            data=ProposalCreate(
                action=ProposalAction.BOARD,
                board=BoardUpdate(
                    members=[
                        gov.agencies[w] for w in ("da", "court", "city", "pretrial", "defender")
                    ],
                    quorum=3,
                    solo_actions=[],
                ),
                summary="five stakeholders, 3 of 5",
                deadline=gov.at(days=14),
            ),
            now=gov.at(seconds=10),
        ).id
    # The new members are not stakeholders of proposals opened under the old board.
    with pytest.raises(Forbidden, match="not a stakeholder on board version 1"):
        vote(gov, first, "pretrial", Choice.YES, gov.at(minutes=2))
    vote(gov, first, "da", Choice.YES, gov.at(minutes=3))
    vote(gov, grown, "da", Choice.YES, gov.at(minutes=3))
    assert vote(gov, grown, "city", Choice.YES, gov.at(minutes=4)).status is ProposalStatus.APPLIED
    # The adoption opened under board 1 is void: the DA's yes no longer counts.
    with pytest.raises(Conflict, match="voided"):
        vote(gov, first, "court", Choice.YES, gov.at(minutes=5))
    second = gov.propose(ProposalAction.ADOPT, now=gov.at(minutes=6))
    vote(gov, second, "da", Choice.YES, gov.at(minutes=7))
    assert vote(gov, second, "court", Choice.YES, gov.at(minutes=8)).status is ProposalStatus.OPEN
    assert (
        vote(gov, second, "pretrial", Choice.YES, gov.at(minutes=9)).status
        is ProposalStatus.APPLIED
    )
    assert status(gov) is AgreementStatus.ACTIVE
    with gov.session() as session:
        shown = [
            show_proposal(session, actor=gov.voters["da"], proposal_id=p) for p in (first, second)
        ]
    assert [(p.board_version, p.required_yes, len(p.board_members)) for p in shown] == [
        (1, 2, 3),
        (2, 3, 5),
    ]
    assert shown[0].status is ProposalStatus.VOIDED


def test_renewal_notices_open_once_within_the_lead_time(gov: Gov) -> None:
    adopt(gov)
    with gov.session() as session:
        assert [e for e in tick(session, now=gov.at(days=1)) if e.kind == "renewal.notice"] == []
        events = tick(session, now=gov.at(days=306))
        assert [e.kind for e in events] == ["renewal.notice"] * 3
        assert tick(session, now=gov.at(days=307)) == []
        notices = session.scalars(select(RenewalNotice)).all()
        assert {n.stakeholder_id for n in notices} == set(gov.agencies.values())
        assert {n.evidence_url for n in notices} == {
            f"/api/v1/agreements/{gov.agreement_id}/evidence"
        }


def test_a_vote_leaves_exactly_one_audit_entry(gov: Gov) -> None:
    pid = gov.propose()
    with gov.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    vote(gov, pid, "da", Choice.YES, gov.at(minutes=1))
    vote(gov, pid, "court", Choice.YES, gov.at(minutes=2))  # decides and applies too
    with gov.session() as session:
        entries = session.scalars(
            select(AuditEntry).order_by(AuditEntry.id).offset(before or 0)
        ).all()
    assert [(e.kind, e.action, e.agreement_id) for e in entries] == [
        (AuditKind.VOTE, "vote.cast", gov.agreement_id),
        (AuditKind.VOTE, "vote.cast", gov.agreement_id),
    ]


def test_the_governance_timeline(gov: Gov) -> None:
    pid = gov.propose()
    vote(gov, pid, "da", Choice.NO, gov.at(minutes=1))
    vote(gov, pid, "da", Choice.YES, gov.at(minutes=2))
    vote(gov, pid, "city", Choice.YES, gov.at(minutes=3))
    with gov.session() as session:
        entries = governance_timeline(
            session, actor=gov.voters["court"], agreement_id=gov.agreement_id
        )
    kinds = [e.kind for e in entries]
    for expected in (
        "version",
        "agreement.created",
        "proposal.opened",
        "vote.cast",
        "vote.changed",
        "proposal.approved",
        "proposal.applied",
        "agreement.adopted",
    ):
        assert expected in kinds
    assert kinds.index("proposal.opened") < kinds.index("vote.cast") < kinds.index("vote.changed")
    rationale = next(e for e in entries if e.kind == "vote.changed")
    assert (rationale.choice, rationale.rationale) == (Choice.YES, "reviewed the evidence")
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_an_approved_decision_that_cannot_apply_fails_with_the_reason(gov: Gov) -> None:
    first = gov.propose(ProposalAction.ADOPT)
    second = gov.propose(ProposalAction.ADOPT)
    vote(gov, first, "da", Choice.YES, gov.at(minutes=1))
    vote(gov, first, "court", Choice.YES, gov.at(minutes=2))
    vote(gov, second, "da", Choice.YES, gov.at(minutes=3))
    failed = vote(gov, second, "city", Choice.YES, gov.at(minutes=4))
    assert failed.status is ProposalStatus.FAILED
    assert failed.closed_reason is not None
    assert "could not be applied: cannot adopt" in failed.closed_reason
    assert status(gov) is AgreementStatus.ACTIVE
    with gov.session() as session:
        kinds = [
            (e.kind, e.proposal_id)
            for e in governance_timeline(
                session, actor=gov.voters["da"], agreement_id=gov.agreement_id
            )
            if e.proposal_id == second
        ]
        assert tick(session, now=gov.at(minutes=5)) == []
    assert [k for k, _ in kinds] == [
        "proposal.opened",
        "vote.cast",
        "vote.cast",
        "proposal.approved",
        "proposal.failed",
    ]


def test_an_applied_renewal_is_stamped_with_the_decision_instant_alone(gov: Gov) -> None:
    """The row, its event and the new version carry the instant the decision applied, read
    once: never the wall clock read again inside the decision (a decision at 23:59:59 UTC would
    otherwise be recorded partly on the next day)."""
    adopt(gov)
    renew = gov.propose(ProposalAction.RENEW, now=gov.at(days=3), new_expires_at=gov.at(days=700))
    vote(gov, renew, "da", Choice.YES, gov.at(days=4))
    decided = gov.at(days=5, hours=7)
    assert vote(gov, renew, "court", Choice.YES, decided).status is ProposalStatus.APPLIED
    with gov.session() as session:
        row = agreement(session, gov)
        event = session.scalars(
            select(AgreementEvent)
            .where(AgreementEvent.agreement_id == gov.agreement_id)
            .order_by(AgreementEvent.id.desc())
            .limit(1)
        ).one()
        version = session.scalars(
            select(AgreementVersion)
            .where(AgreementVersion.agreement_id == gov.agreement_id)
            .order_by(AgreementVersion.version.desc())
            .limit(1)
        ).one()
        proposal = session.get(Proposal, renew)
        assert proposal is not None
        assert event.kind.value == "renewed" and version.version == 2
        assert (row.updated_at, event.at, version.created_at) == (decided,) * 3
        assert proposal.applied_at == decided

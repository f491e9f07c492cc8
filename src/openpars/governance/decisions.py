"""Deciding proposals and applying their outcome on time; ``tick`` is the periodic step.

Nothing here depends on a background job for correctness: access to an agreement ends at its
expiry by time alone (the grant is time-based). ``tick`` records what time has decided (a
deadline passed, an effective instant reached, a renewal reminder due) and is safe to run as
often as wanted: each step is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from openpars.access.external import ensure_sets_in_force
from openpars.access.visibility import drop_sets_except, refresh
from openpars.agreements import floor as floors
from openpars.agreements.lifecycle import apply_decision, expire_due
from openpars.agreements.models import LifecycleAction
from openpars.audit.events import AuditKind
from openpars.db import utcnow
from openpars.errors import Conflict, DomainError
from openpars.governance import repository as repo
from openpars.governance import witness_changes
from openpars.governance.board import (
    audit_act,
    board_hash,
    current_board,
    document_of,
    install_decided,
    rule_of,
)
from openpars.governance.models import Proposal, ProposalStatus, RenewalNotice, Vote
from openpars.governance.quorum import (
    Approved,
    Ballot,
    Decision,
    Failed,
    ProposalAction,
    QuorumRule,
    Rejected,
    Tally,
    outcome,
)
from openpars.governance.schemas import GovernanceEvent
from openpars.identity.principal import SYSTEM, Principal

EVIDENCE_URL = "/api/v1/agreements/{agreement_id}/evidence"


def rule_for(session: Session, proposal: Proposal) -> QuorumRule:
    """The rule a proposal is decided by: its own board version's, for its action."""
    board = repo.get_board(session, proposal.board_config_id)
    assert board is not None, "a proposal always references its board version"
    return rule_of(board).for_action(proposal.action)


def ballots(votes: Sequence[Vote]) -> list[Ballot]:
    """Stored votes as the quorum function reads them."""
    return [Ballot(stakeholder=v.stakeholder_id, choice=v.choice, at=v.at) for v in votes]


def decide(session: Session, proposal: Proposal, *, now: datetime) -> Decision:
    """The quorum function over a proposal's recorded votes."""
    votes = repo.votes_of(session, proposal.id)
    return outcome(rule_for(session, proposal), ballots(votes), now, proposal.deadline)


def tally_document(tally: Tally) -> dict[str, list[int]]:
    """A tally as stored on a decided proposal."""
    return {
        "yes": sorted(tally.yes),
        "no": sorted(tally.no),
        "abstain": sorted(tally.abstain),
    }


def _event(kind: str, proposal: Proposal, at: datetime, detail: str) -> GovernanceEvent:
    return GovernanceEvent(
        kind=kind, at=at, agreement_id=proposal.agreement_id, proposal_id=proposal.id, detail=detail
    )


def _void(proposal: Proposal, *, now: datetime, reason: str) -> GovernanceEvent:
    proposal.status = ProposalStatus.VOIDED
    proposal.closed_at = now
    proposal.closed_reason = reason
    return _event("proposal.voided", proposal, now, reason)


def void_if_stale(session: Session, proposal: Proposal, *, now: datetime) -> GovernanceEvent | None:
    """Void a live proposal whose subject (agreement version, floor, board) or board moved on."""
    state = "approved" if proposal.decided_at else "open"
    board = current_board(session, now=now)
    if proposal.board_config_id != board.id:
        # The board that would decide it is no longer in force: a member it removed must not
        # keep a say, and a quorum it changed must not keep counting the old way.
        return _void(
            proposal,
            now=now,
            reason=f"the board changed (now version {board.version}) while the proposal was "
            f"{state}; votes on it are kept but no longer count",
        )
    if proposal.action is ProposalAction.BOARD:
        in_force = board_hash(document_of(board))
        if in_force == proposal.floor_base_hash:
            return None
        return _void(
            proposal,
            now=now,
            reason=f"the board changed (now {in_force[:12]}...) while the proposal was {state}; "
            "votes on it are kept but no longer count",
        )
    if proposal.action is ProposalAction.WITNESS:
        stale = witness_changes.stale_reason(session, proposal, state=state)
        return None if stale is None else _void(proposal, now=now, reason=stale)
    if proposal.agreement_id is None:
        # A floor proposal was reviewed against the floor in force when it opened; once another
        # floor is in force its comparison (what it loosens) no longer holds.
        in_force = floors.floor_hash(floors.get_floor(session))
        if in_force == proposal.floor_base_hash:
            return None
        return _void(
            proposal,
            now=now,
            reason=f"the site floor changed (now {in_force[:12]}...) while the proposal was "
            f"{state}; votes on it are kept but no longer count",
        )
    agreement = repo.get_agreement(session, proposal.agreement_id)
    current = repo.current_version(session, agreement) if agreement is not None else None
    if current is not None and current.content_hash == proposal.content_hash:
        return None
    number = current.version if current is not None else "?"
    return _void(
        proposal,
        now=now,
        reason=f"agreement {proposal.agreement_id} changed to version {number} while the "
        f"proposal was {state}; votes on version {proposal.agreement_version} are kept but no "
        "longer count",
    )


def _close(proposal: Proposal, decision: Decision, *, now: datetime) -> GovernanceEvent | None:
    if isinstance(decision, Approved):
        proposal.status = ProposalStatus.APPROVED
        proposal.decided_at = decision.at
        # Never earlier than openpars learned of the quorum: a signer's clock (or a backdated
        # signature) must not make a decision take effect retroactively.
        proposal.effective_instant = max(proposal.effective_at or now, now)
        proposal.final_tally = tally_document(decision.tally)
        detail = f"quorum reached; takes effect at {proposal.effective_instant.isoformat()}"
        return _event("proposal.approved", proposal, decision.at, detail)
    if isinstance(decision, Rejected | Failed):
        rejected = isinstance(decision, Rejected)
        proposal.status = ProposalStatus.REJECTED if rejected else ProposalStatus.FAILED
        proposal.decided_at = decision.at
        proposal.closed_at = decision.at
        proposal.final_tally = tally_document(decision.tally)
        reasons = "; ".join(decision.reasons) if isinstance(decision, Failed) else ""
        proposal.closed_reason = (
            "the deadline passed and enough stakeholders voted no to block it"
            if rejected
            else f"the deadline passed without a quorum ({reasons})"
        )
        kind = "proposal.rejected" if rejected else "proposal.failed"
        return _event(kind, proposal, decision.at, proposal.closed_reason)
    return None


def _apply_floor(session: Session, proposal: Proposal, *, at: datetime) -> None:
    """Put an approved floor proposal's floor in force (audited by the caller's entry)."""
    assert proposal.floor_content is not None, "a floor proposal holds its floor"
    floor = floors.parse_floor(proposal.floor_content)
    if floors.floor_hash(floor) != proposal.content_hash:
        raise Conflict("the stored floor does not match the hash the stakeholders signed")
    floors.store_floor(
        session,
        floor=floor,
        changed_by=f"proposal {proposal.id}",
        changed_by_id=None,
        reason=f"board decision, proposal {proposal.id}: {proposal.summary}"[:500],
        at=at,
    )


def _apply_board(session: Session, proposal: Proposal, *, at: datetime) -> None:
    """Put an approved board proposal's board in force."""
    assert proposal.floor_content is not None, "a board proposal holds its board"
    if board_hash(proposal.floor_content) != proposal.content_hash:
        raise Conflict("the stored board does not match the hash the stakeholders signed")
    install_decided(
        session,
        proposal.floor_content,
        proposal_id=proposal.id,
        board_id=proposal.board_config_id,
        summary=proposal.summary,
        at=at,
    )


def _apply(session: Session, proposal: Proposal, *, now: datetime) -> GovernanceEvent:
    instant = proposal.effective_instant
    assert instant is not None
    try:
        # A refused decision must not leave half a change behind, so it runs in a savepoint.
        with session.begin_nested():
            if proposal.action is ProposalAction.BOARD:
                _apply_board(session, proposal, at=now)
            elif proposal.action is ProposalAction.WITNESS:
                witness_changes.apply(session, proposal)
            elif proposal.agreement_id is None:
                _apply_floor(session, proposal, at=now)
            else:
                apply_decision(
                    session,
                    agreement_id=proposal.agreement_id,
                    content_hash=proposal.content_hash,
                    action=LifecycleAction(proposal.action.value),
                    effective_at=instant,
                    decided_by=f"proposal {proposal.id}",
                    new_expires_at=proposal.new_expires_at,
                    audited=False,
                    now=now,
                )
    except DomainError as exc:
        proposal.status = ProposalStatus.FAILED
        proposal.closed_at = now
        proposal.closed_reason = f"approved, but could not be applied: {exc.message}"[:500]
        return _event("proposal.failed", proposal, now, proposal.closed_reason)
    proposal.status = ProposalStatus.APPLIED
    proposal.applied_at = now
    proposal.closed_at = now
    detail = f"{proposal.action.value} applied, effective {instant.isoformat()}"
    if proposal.action is ProposalAction.BOARD:
        detail += f"; board {proposal.content_hash[:12]}... in force"
    elif proposal.action is ProposalAction.WITNESS:
        detail += f"; witness change {proposal.content_hash[:12]}... made"
    elif proposal.agreement_id is None:
        detail += f"; site floor {proposal.content_hash[:12]}... in force"
    return _event("proposal.applied", proposal, now, detail)


def evaluate(session: Session, proposal: Proposal, *, now: datetime) -> list[GovernanceEvent]:
    """Bring one proposal up to date: void, decide, and apply once its instant is reached."""
    if proposal.status not in (ProposalStatus.OPEN, ProposalStatus.APPROVED):
        return []
    voided = void_if_stale(session, proposal, now=now)
    if voided is not None:
        session.flush()
        return [voided]
    events: list[GovernanceEvent] = []
    if proposal.status is ProposalStatus.OPEN:
        closed = _close(proposal, decide(session, proposal, now=now), now=now)
        if closed is not None:
            events.append(closed)
    if (
        proposal.status is ProposalStatus.APPROVED
        and proposal.effective_instant is not None
        and proposal.effective_instant <= now
    ):
        applied = _apply(session, proposal, now=now)
        events.append(applied)
        if applied.kind == "proposal.applied":
            if proposal.action is ProposalAction.BOARD:
                # Every live proposal was opened under the board just replaced.
                events += void_stale_all(session, now=now)
            elif proposal.agreement_id is None:
                # Every other live floor (or witness) proposal was reviewed against the floor
                # (or witness set) just replaced; each checks its own subject.
                events += void_stale_floor(session, now=now)
            else:
                events += void_stale(session, agreement_id=proposal.agreement_id, now=now)
    session.flush()
    return events


def void_stale(session: Session, *, agreement_id: int, now: datetime) -> list[GovernanceEvent]:
    """Void every open or approved proposal on an agreement whose version changed."""
    events = []
    for other in repo.live_proposals(session, agreement_id=agreement_id):
        voided = void_if_stale(session, other, now=now)
        if voided is not None:
            events.append(voided)
    session.flush()
    return events


def void_stale_all(session: Session, *, now: datetime) -> list[GovernanceEvent]:
    """Void every live proposal whose subject or board is no longer the one in force."""
    events = []
    for other in repo.live_proposals(session):
        voided = void_if_stale(session, other, now=now)
        if voided is not None:
            events.append(voided)
    session.flush()
    return events


def void_stale_now(
    session: Session, *, agreement_id: int, actor: Principal, now: datetime | None = None
) -> list[GovernanceEvent]:
    """Void an agreement's stale proposals in a unit of their own, audited, right after a change.

    Called in its own transaction once the agreement change has committed, so the record shows
    the voided proposals at once rather than at the next vote or tick.
    """
    moment = now or utcnow()
    events = void_stale(session, agreement_id=agreement_id, now=moment)
    if not events:
        return events  # nothing was voided, so there is nothing to record
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="proposal.void_stale",
        actor=actor,
        agreement_id=agreement_id,
        voided=[e.proposal_id for e in events],
        events=[e.model_dump(mode="json") for e in events],
    )
    return events


def void_stale_floor(session: Session, *, now: datetime) -> list[GovernanceEvent]:
    """Void every open or approved floor proposal reviewed against a floor no longer in force."""
    events = []
    for other in repo.live_proposals(session, floor=True):
        voided = void_if_stale(session, other, now=now)
        if voided is not None:
            events.append(voided)
    session.flush()
    return events


def _remind(session: Session, *, now: datetime) -> list[GovernanceEvent]:
    board = current_board(session, now=now)
    lead = timedelta(days=board.reminder_lead_days)
    events = []
    for agreement in repo.expiring_between(session, start=now, end=now + lead):
        expires_at = agreement.in_force_until
        assert expires_at is not None
        url = EVIDENCE_URL.format(agreement_id=agreement.id)
        for stakeholder in board.members:
            if repo.notice_exists(
                session,
                agreement_id=agreement.id,
                stakeholder_id=stakeholder,
                expires_at=expires_at,
            ):
                continue
            session.add(
                RenewalNotice(
                    agreement_id=agreement.id,
                    stakeholder_id=stakeholder,
                    expires_at=expires_at,
                    opened_at=now,
                    evidence_url=url,
                )
            )
            events.append(
                GovernanceEvent(
                    kind="renewal.notice",
                    at=now,
                    agreement_id=agreement.id,
                    detail=f"stakeholder {stakeholder}: expires {expires_at.isoformat()}; "
                    f"evidence at {url}",
                )
            )
    session.flush()
    return events


def tick(session: Session, *, now: datetime, actor: Principal = SYSTEM) -> list[GovernanceEvent]:
    """One governance step at ``now``: expiries, deadlines, effective instants, reminders.

    Like every job, it leaves exactly one audit entry (kind PROPOSAL) listing what it did;
    the entry names the agreement when all events concern one.
    """
    # The board in force first, then proposals: the lock order of a vote on a board proposal.
    repo.latest_board(session, for_update=True)
    events = [
        GovernanceEvent(
            kind="agreement.expired",
            at=now,
            agreement_id=agreement_id,
            detail="reached its expiry without an approved renewal",
        )
        for agreement_id in expire_due(session, at=now, by="governance tick")
    ]
    for proposal in repo.live_proposals(session):
        events += evaluate(session, proposal, now=now)
    events += _remind(session, now=now)
    # Visibility sets: persons a writer left pending, scopes (or a floor) without a set, sets
    # no version in force uses any more (ended agreements, a changed floor).
    refresh(session)
    drop_sets_except(session, keep=ensure_sets_in_force(session))
    concerned = {e.agreement_id for e in events}
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="governance.tick",
        actor=actor,
        agreement_id=concerned.pop() if len(concerned) == 1 else None,
        now=now.isoformat(),
        events=[e.model_dump(mode="json") for e in events],
    )
    return events

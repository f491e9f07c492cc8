"""An agreement's governance history: versions, proposals, votes, outcomes, status changes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openpars.audit.events import AuditKind
from openpars.errors import NotFound
from openpars.governance import repository as repo
from openpars.governance.board import audit_act, require_reader
from openpars.governance.models import Proposal, ProposalStatus
from openpars.governance.schemas import RenewalNoticeRead, TimelineEntry
from openpars.identity.principal import Principal
from openpars.pages import Page


def _version_entries(session: Session, agreement_id: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=v.created_at,
            kind="version",
            summary=f"version {v.version} written by {v.created_by}: {v.reason}",
            version=v.version,
            content_hash=v.content_hash,
            by=v.created_by,
            details={
                "effective_at": v.effective_at.isoformat(),
                "expires_at": v.expires_at.isoformat(),
            },
        )
        for v in repo.versions_of(session, agreement_id)
    ]


def _status_entries(session: Session, agreement_id: int) -> list[TimelineEntry]:
    entries = []
    for e in repo.agreement_events(session, agreement_id):
        change = ""
        if e.from_status is not None and e.to_status is not None:
            change = f" ({e.from_status.value} -> {e.to_status.value})"
        entries.append(
            TimelineEntry(
                at=e.at,
                kind=f"agreement.{e.kind.value}",
                summary=f"{e.kind.value}{change}" + (f": {e.reason}" if e.reason else ""),
                version=e.version,
                content_hash=e.content_hash,
                by=e.by,
                details={"effective_at": e.effective_at.isoformat()} if e.effective_at else {},
            )
        )
    return entries


# At equal instants: what happened first in the story comes first (a vote before the decision
# it triggered, the decision before its application); the sort is stable within a rank.
_ORDER = {
    "version": 0,
    "proposal.opened": 1,
    "vote.cast": 2,
    "vote.changed": 2,
    "proposal.approved": 3,
    "proposal.rejected": 3,
}
_DEADLINE_OUTCOMES = (ProposalStatus.REJECTED, ProposalStatus.FAILED)


def _proposal_entries(proposal: Proposal) -> list[TimelineEntry]:
    common: dict[str, object] = {
        "proposal_id": proposal.id,
        "version": proposal.agreement_version,
        "content_hash": proposal.content_hash,
    }
    entries = [
        TimelineEntry(
            at=proposal.opened_at,
            kind="proposal.opened",
            summary=f"{proposal.opened_by} proposed to {proposal.action.value}: {proposal.summary}",
            by=proposal.opened_by,
            details={"deadline": proposal.deadline.isoformat()},
            **common,
        )
    ]
    approved = proposal.effective_instant is not None
    if proposal.decided_at is not None and (approved or proposal.status in _DEADLINE_OUTCOMES):
        entries.append(
            TimelineEntry(
                at=proposal.decided_at,
                kind="proposal.approved" if approved else f"proposal.{proposal.status.value}",
                summary="quorum reached" if approved else (proposal.closed_reason or ""),
                details={"tally": proposal.final_tally or {}},
                **common,
            )
        )
    # Applying, voiding, or failing to apply an approved decision happen after the decision.
    after_decision = proposal.status in (ProposalStatus.APPLIED, ProposalStatus.VOIDED) or (
        proposal.status is ProposalStatus.FAILED and approved
    )
    if proposal.closed_at is not None and after_decision:
        effective = proposal.effective_instant.isoformat() if proposal.effective_instant else ""
        entries.append(
            TimelineEntry(
                at=proposal.closed_at,
                kind=f"proposal.{proposal.status.value}",
                summary=proposal.closed_reason
                or f"{proposal.action.value} took effect at {effective}",
                **common,
            )
        )
    return entries


def _vote_entries(session: Session, agreement_id: int) -> list[TimelineEntry]:
    entries = []
    seen: set[tuple[int, int]] = set()
    for v in repo.votes_of_agreement(session, agreement_id):
        changed = (v.proposal_id, v.stakeholder_id) in seen
        seen.add((v.proposal_id, v.stakeholder_id))
        entries.append(
            TimelineEntry(
                at=v.at,
                kind="vote.changed" if changed else "vote.cast",
                summary=f"stakeholder {v.stakeholder_id} ({v.voter_username}) voted "
                f"{v.choice.value} on proposal {v.proposal_id}",
                proposal_id=v.proposal_id,
                stakeholder_id=v.stakeholder_id,
                by=v.voter_username,
                choice=v.choice,
                rationale=v.rationale,
                details={
                    "vote_id": v.id,
                    "recorded_at": v.recorded_at.isoformat(),
                    "signed_sha256": v.signed_sha256,
                },
            )
        )
    return entries


def governance_timeline(
    session: Session, *, actor: Principal, agreement_id: int
) -> list[TimelineEntry]:
    """Everything governance did to an agreement, oldest first, audited as one read."""
    require_reader(actor)
    if repo.get_agreement(session, agreement_id) is None:
        raise NotFound(f"agreement {agreement_id} does not exist", field="agreement_id")
    entries = _version_entries(session, agreement_id) + _status_entries(session, agreement_id)
    for proposal in repo.list_proposals(
        session, agreement_id=agreement_id, status=None, offset=0, limit=10_000
    ):
        entries += _proposal_entries(proposal)
    entries += _vote_entries(session, agreement_id)
    entries += [
        TimelineEntry(
            at=n.opened_at,
            kind="renewal.notice",
            summary=f"renewal notice to stakeholder {n.stakeholder_id}: expires "
            f"{n.expires_at.isoformat()}; evidence at {n.evidence_url}",
            stakeholder_id=n.stakeholder_id,
            details={"evidence_url": n.evidence_url, "expires_at": n.expires_at.isoformat()},
        )
        for n in repo.notices_of(session, agreement_id)
    ]
    entries.sort(key=lambda e: (e.at, _ORDER.get(e.kind, 5)))
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="governance.timeline",
        actor=actor,
        agreement_id=agreement_id,
        returned=len(entries),
    )
    return entries


def list_notices(
    session: Session,
    *,
    actor: Principal,
    stakeholder_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[RenewalNoticeRead]:
    """A page of renewal notices newest first, optionally for one stakeholder, audited as one
    read."""
    require_reader(actor)
    rows = repo.list_notices(session, stakeholder_id=stakeholder_id, offset=offset, limit=limit)
    total = repo.count_notices(session, stakeholder_id=stakeholder_id)
    result = [RenewalNoticeRead.model_validate(n) for n in rows]
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="renewal_notice.list",
        actor=actor,
        stakeholder=stakeholder_id,
        returned=[n.id for n in result],
    )
    return Page[RenewalNoticeRead](items=result, total=total, offset=offset, limit=limit)

"""Proposals: opening one against an exact agreement version, reading them with their tally.

Each call made on behalf of a caller leaves exactly one audit entry here, so the API and the
CLI cannot forget it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.agreements import floor as floors
from openpars.agreements.rules import check_floor
from openpars.agreements.service import document_of
from openpars.audit.events import AuditKind
from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput, NotFound
from openpars.governance import board as boards
from openpars.governance import repository as repo
from openpars.governance import witness_changes
from openpars.governance.board import (
    audit_act,
    current_board,
    require_reader,
    stakeholder_of,
)
from openpars.governance.decisions import decide, rule_for
from openpars.governance.models import (
    Proposal,
    ProposalStatus,
)
from openpars.governance.quorum import Pending, ProposalAction
from openpars.governance.reports import attach_report, report_ref
from openpars.governance.schemas import (
    ProposalCreate,
    ProposalRead,
    TallyRead,
)
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.oversight.explain_sql import Rules
from openpars.pages import Page


def get_proposal(session: Session, proposal_id: int, *, for_update: bool = False) -> Proposal:
    """One proposal or NotFound naming it."""
    proposal = repo.get_proposal(session, proposal_id, for_update=for_update)
    if proposal is None:
        raise NotFound(f"proposal {proposal_id} does not exist", field="proposal_id")
    return proposal


def what_if_path(proposal_id: int) -> str:
    """Where a voter finds the what-if replay of an agreement proposal (oversight.whatif)."""
    return f"/api/v1/proposals/{proposal_id}/what-if"


def proposal_read(session: Session, proposal: Proposal, *, now: datetime) -> ProposalRead:
    """A proposal with its rule and standing tally (the final tally once decided)."""
    board = repo.get_board(session, proposal.board_config_id)
    assert board is not None
    rule = rule_for(session, proposal)
    decision = decide(session, proposal, now=now)
    tally = decision.tally
    if proposal.final_tally is not None:
        yes, no, abstain = (proposal.final_tally[k] for k in ("yes", "no", "abstain"))
    else:
        yes, no, abstain = sorted(tally.yes), sorted(tally.no), sorted(tally.abstain)
    return ProposalRead(
        id=proposal.id,
        agreement_id=proposal.agreement_id,
        agreement_version=proposal.agreement_version,
        content_hash=proposal.content_hash,
        floor=proposal.floor_content if proposal.action is ProposalAction.FLOOR else None,
        board=proposal.floor_content if proposal.action is ProposalAction.BOARD else None,
        witness=proposal.floor_content if proposal.action is ProposalAction.WITNESS else None,
        floor_base_hash=proposal.floor_base_hash,
        action=proposal.action,
        summary=proposal.summary,
        deadline=proposal.deadline,
        effective_at=proposal.effective_at,
        new_expires_at=proposal.new_expires_at,
        status=proposal.status,
        opened_at=proposal.opened_at,
        opened_by=proposal.opened_by,
        decided_at=proposal.decided_at,
        effective_instant=proposal.effective_instant,
        applied_at=proposal.applied_at,
        closed_reason=proposal.closed_reason,
        board_version=board.version,
        board_members=list(board.members),
        required_yes=rule.required,
        what_if=None if proposal.agreement_id is None else what_if_path(proposal.id),
        tally=TallyRead(
            yes=yes,
            no=no,
            abstain=abstain,
            needed=decision.needed
            if isinstance(decision, Pending)
            else max(0, rule.required - len(yes)),
        ),
        report=report_ref(session, proposal.id),
    )


# Actions that put an agreement version in force, and so must respect the site floor.
_PUTS_IN_FORCE = frozenset({ProposalAction.ADOPT, ProposalAction.AMEND, ProposalAction.RENEW})


def _check_timing(data: ProposalCreate, *, now: datetime) -> None:
    if data.deadline <= now:
        raise InvalidInput(
            f"deadline: {data.deadline.isoformat()} is in the past; a voting deadline must be "
            "later than now",
            field="deadline",
        )
    if data.effective_at is not None and data.effective_at < now:
        raise InvalidInput(
            f"effective_at: {data.effective_at.isoformat()} is in the past; leave it out to "
            "take effect as soon as the quorum is reached",
            field="effective_at",
        )
    if data.action is ProposalAction.RENEW:
        if data.new_expires_at is None:
            raise InvalidInput(
                "new_expires_at: a renewal needs the new expiry", field="new_expires_at"
            )
        if data.new_expires_at <= max(now, data.effective_at or now):
            raise InvalidInput(
                "new_expires_at: the new expiry must be later than now and the effective time",
                field="new_expires_at",
            )
    elif data.new_expires_at is not None:
        raise InvalidInput(
            f"new_expires_at: only a renewal sets a new expiry, not '{data.action.value}'",
            field="new_expires_at",
        )


def _bind_floor(session: Session, data: ProposalCreate) -> tuple[str, dict[str, Any], str]:
    """A floor proposal's subject: (proposed hash, proposed floor, hash of the floor in force)."""
    if data.board is not None:
        raise InvalidInput(
            "board: only a proposal with action 'board' carries a board, not 'floor'",
            field="board",
        )
    if data.agreement_id is not None:
        raise InvalidInput(
            "agreement_id: a floor proposal is about the site floor, not an agreement; leave "
            "agreement_id out",
            field="agreement_id",
        )
    if data.floor is None:
        raise InvalidInput(
            "floor: a floor proposal needs the whole proposed site floor document", field="floor"
        )
    proposed = floors.parse_floor(data.floor)
    proposed_hash = floors.floor_hash(proposed)
    if data.content_hash is not None and data.content_hash != proposed_hash:
        raise Conflict(
            f"content_hash: you reviewed {data.content_hash[:12]}..., but the floor sent hashes "
            f"to {proposed_hash[:12]}...; send the floor you reviewed",
            field="content_hash",
        )
    current = floors.get_floor(session)
    if proposed == current:
        raise Conflict(
            "floor: the proposed floor is the floor in force; there is nothing to decide",
            code="floor_unchanged",
            field="floor",
        )
    return proposed_hash, proposed.model_dump(mode="json"), floors.floor_hash(current)


def _bind_board(session: Session, data: ProposalCreate) -> tuple[str, dict[str, Any], str]:
    """A board proposal's subject: (proposed hash, proposed board, hash of the board in force)."""
    if data.agreement_id is not None or data.floor is not None:
        raise InvalidInput(
            "board: a board proposal is about the board, not an agreement or the floor; leave "
            "agreement_id and floor out",
            field="agreement_id" if data.agreement_id is not None else "floor",
        )
    if data.board is None:
        raise InvalidInput(
            "board: a board proposal needs the whole proposed board (members, quorum, "
            "solo_actions, reminder_lead_days)",
            field="board",
        )
    proposed = boards.validated_document(session, data.board)
    proposed_hash = boards.board_hash(proposed)
    if data.content_hash is not None and data.content_hash != proposed_hash:
        raise Conflict(
            f"content_hash: you reviewed {data.content_hash[:12]}..., but the board sent hashes "
            f"to {proposed_hash[:12]}...; send the board you reviewed",
            field="content_hash",
        )
    current = boards.board_hash(boards.document_of(current_board(session)))
    if proposed_hash == current:
        raise Conflict(
            "board: the proposed board is the board in force; there is nothing to decide",
            code="board_unchanged",
            field="board",
        )
    return proposed_hash, proposed, current


def _bind_agreement(session: Session, data: ProposalCreate) -> tuple[int, int, str]:
    """An agreement proposal's subject: (agreement id, its current version, that version's hash)."""
    if data.floor is not None:
        raise InvalidInput(
            f"floor: only a proposal with action 'floor' carries a floor, not "
            f"'{data.action.value}'",
            field="floor",
        )
    if data.board is not None:
        raise InvalidInput(
            f"board: only a proposal with action 'board' carries a board, not "
            f"'{data.action.value}'",
            field="board",
        )
    if data.agreement_id is None:
        raise InvalidInput(
            f"agreement_id: a '{data.action.value}' proposal names its agreement",
            field="agreement_id",
        )
    agreement = repo.get_agreement(session, data.agreement_id)
    if agreement is None:
        raise NotFound(f"agreement {data.agreement_id} does not exist", field="agreement_id")
    version = repo.current_version(session, agreement)
    assert version is not None, "an agreement always has its current version"
    if data.content_hash is not None and data.content_hash != version.content_hash:
        raise Conflict(
            f"content_hash: you reviewed {data.content_hash[:12]}..., but agreement "
            f"{agreement.id} is now at version {version.version} ({version.content_hash[:12]}...); "
            "review the current version and propose again",
            field="content_hash",
        )
    if data.action in _PUTS_IN_FORCE:
        # A scope below the site floor is refused when proposed, naming the clause, not after
        # the stakeholders have voted on it.
        check_floor(session, document_of(version))
    return agreement.id, version.version, version.content_hash


def open_proposal(
    session: Session,
    *,
    actor: Principal,
    data: ProposalCreate,
    now: datetime | None = None,
    rules: Rules | None = None,
    whatif_max_queries: int = 20_000,
) -> Proposal:
    """Open a proposal bound to its exact subject (agreement version, floor, board) and board.

    A renewal gets the oversight report of the agreement's current term attached (computed with
    ``rules``, the site's explanation thresholds), its SHA-256 in the audit entry. An agreement
    proposal gets its what-if replay (the last ``WHATIF_MONTHS`` months) kept with it, its
    SHA-256 in the audit entry too (a failed replay is kept as failed, the proposal opens)."""
    moment = now or utcnow()
    board = current_board(session, now=moment)
    if not actor.can(Permission.AGREEMENT_MANAGE) or data.action is ProposalAction.WITNESS:
        # The witnesses watch the operator, so the operator does not even propose them: only a
        # stakeholder's designated voter may.
        stakeholder_of(actor, board)
    actor.require_fresh()
    if data.witness is not None and data.action is not ProposalAction.WITNESS:
        raise InvalidInput(
            f"witness: only a proposal with action 'witness' carries a witness change, not "
            f"'{data.action.value}'",
            field="witness",
        )
    agreement_id: int | None = None
    version: int | None = None
    floor_content: dict[str, Any] | None = None
    base_hash: str | None = None
    if data.action is ProposalAction.FLOOR:
        content_hash, floor_content, base_hash = _bind_floor(session, data)
    elif data.action is ProposalAction.BOARD:
        content_hash, floor_content, base_hash = _bind_board(session, data)
    elif data.action is ProposalAction.WITNESS:
        content_hash, floor_content, base_hash = witness_changes.bind(session, data)
    else:
        agreement_id, version, content_hash = _bind_agreement(session, data)
    _check_timing(data, now=moment)
    proposal = Proposal(
        agreement_id=agreement_id,
        agreement_version=version,
        content_hash=content_hash,
        floor_content=floor_content,
        floor_base_hash=base_hash,
        action=data.action,
        summary=data.summary,
        new_expires_at=data.new_expires_at,
        effective_at=data.effective_at,
        deadline=data.deadline,
        board_config_id=board.id,
        status=ProposalStatus.OPEN,
        opened_at=moment,
        opened_by=actor.username,
        opened_by_user_id=actor.user_id,
    )
    session.add(proposal)
    session.flush()
    report_hash: str | None = None
    if data.action is ProposalAction.RENEW:
        agreement = repo.get_agreement(session, data.agreement_id or 0)
        assert agreement is not None, "bound above"
        report_hash = attach_report(
            session, proposal, agreement, rules=rules or Rules(), now=moment
        ).sha256
    replay: dict[str, Any] = {}
    if agreement_id is not None and version is not None:
        # Imported here: the replay reads governance proposals.
        from openpars.oversight.whatif import WHATIF_MONTHS, store_replay

        kept = store_replay(
            session, proposal.id, by=actor, months=WHATIF_MONTHS,
            max_queries=whatif_max_queries, now=moment,
        )  # fmt: skip
        replay = {"replay_id": kept.id, "replay_status": kept.status}
        if kept.sha256 is not None:
            replay["replay_sha256"] = kept.sha256
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="proposal.open",
        actor=actor,
        agreement_id=agreement_id,
        proposal_id=proposal.id,
        proposal_action=data.action.value,
        content_hash=content_hash,
        version=version,
        floor=floor_content if data.action is ProposalAction.FLOOR else None,
        board=floor_content if data.action is ProposalAction.BOARD else None,
        witness=floor_content if data.action is ProposalAction.WITNESS else None,
        floor_base_hash=base_hash,
        deadline=data.deadline.isoformat(),
        board_version=board.version,
        **({"report_sha256": report_hash} if report_hash is not None else {}),
        **replay,
    )
    return proposal


def show_proposal(
    session: Session, *, actor: Principal, proposal_id: int, now: datetime | None = None
) -> ProposalRead:
    """One proposal, audited as a read."""
    require_reader(actor)
    proposal = get_proposal(session, proposal_id)
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="proposal.read",
        actor=actor,
        agreement_id=proposal.agreement_id,
        proposal_id=proposal.id,
    )
    return proposal_read(session, proposal, now=now or utcnow())


def list_proposals(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int | None = None,
    status: ProposalStatus | None = None,
    offset: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> Page[ProposalRead]:
    """A page of proposals newest first, audited as one read."""
    require_reader(actor)
    rows = repo.list_proposals(
        session, agreement_id=agreement_id, status=status, offset=offset, limit=limit
    )
    total = repo.count_proposals(session, agreement_id=agreement_id, status=status)
    result = [proposal_read(session, p, now=now or utcnow()) for p in rows]
    audit_act(
        session,
        kind=AuditKind.PROPOSAL,
        action="proposal.list",
        actor=actor,
        agreement_id=agreement_id,
        status=status.value if status else None,
        offset=offset,
        limit=limit,
        returned=[p.id for p in result],
    )
    return Page[ProposalRead](items=result, total=total, offset=offset, limit=limit)

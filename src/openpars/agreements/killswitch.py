"""The kill switch: any stakeholder cuts off an agreement, a unit or an account, alone, at once.

Lifting is not symmetric: a suspension is lifted only by an account of the stakeholder that
imposed it, or by a quorum ``resume`` decision of the board (governance), never by one
administrator or another stakeholder alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from openpars.agreements import repository as repo
from openpars.agreements.models import (
    Agreement,
    EventKind,
    Resumption,
    Suspension,
    SuspensionTarget,
)
from openpars.agreements.rules import audit, record_event, require_reader
from openpars.agreements.schemas import SuspensionRead
from openpars.agreements.service import get_agreement
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission, Role


def _target_id(
    session: Session, agreement: Agreement, target: SuspensionTarget, target_id: int | None
) -> int:
    """Check the target belongs to the agreement's grantee; return its id."""
    if target is SuspensionTarget.AGREEMENT:
        if target_id not in (None, agreement.id):
            raise InvalidInput(
                "target_id: leave it out (or give the agreement id) to suspend the whole agreement",
                field="target_id",
            )
        return agreement.id
    if target_id is None:
        raise InvalidInput(f"target_id: name the {target.value} to suspend", field="target_id")
    if target is SuspensionTarget.UNIT:
        agency_id: int | None = target_id
    else:
        user = repo.get_user(session, target_id)
        agency_id = user.agency_id if user else None
    if agency_id is None or agreement.grantee_agency_id not in repo.agency_chain(
        session, agency_id
    ):
        raise InvalidInput(
            f"target_id: {target.value} {target_id} does not belong to the grantee agency "
            f"{agreement.grantee_agency_id} of agreement {agreement.id}",
            field="target_id",
        )
    return target_id


def board_members(session: Session) -> frozenset[int]:
    """The stakeholder agency ids of the board in force (the default board if none is set)."""
    # Imported here: governance builds on agreements, not the other way round.
    from openpars.governance import repository as governance_repo

    board = governance_repo.latest_board(session)
    if board is not None:
        return frozenset(board.members)
    return frozenset(a.id for a in governance_repo.default_member_agencies(session))


def stakeholder_of(session: Session, actor: Principal) -> int | None:
    """The board member an account speaks for: its agency, or the nearest parent on the board.

    A site or agreement administrator speaks for no stakeholder, whatever agency it sits in
    (separation of duties): what it suspends only a quorum lifts, and it lifts nothing alone.
    """
    if actor.roles & {Role.ADMIN, Role.AGREEMENT_ADMIN}:
        return None
    members = board_members(session)
    return next((a for a in actor.agency_path if a in members), None)


def suspend(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    target: SuspensionTarget,
    target_id: int | None = None,
    reason: str,
    at: datetime | None = None,
) -> Suspension:
    """Kill switch: cut off an agreement, a sub-unit or an account from this instant; audited."""
    actor.require(Permission.AGREEMENT_SUSPEND)
    actor.require_fresh()
    moment = at or utcnow()
    agreement = get_agreement(session, agreement_id=agreement_id, for_update=True)
    resolved = _target_id(session, agreement, target, target_id)
    existing = repo.open_suspension(session, target=target, target_id=resolved)
    if existing is not None:
        raise Conflict(
            f"{target.value} {resolved} is already suspended since "
            f"{existing.suspended_at.isoformat()} (suspension {existing.id})",
            field="target_id",
        )
    row = Suspension(
        agreement_id=agreement.id,
        target_kind=target,
        target_id=resolved,
        reason=reason,
        suspended_by=actor.username,
        suspended_by_id=actor.user_id,
        stakeholder_id=stakeholder_of(session, actor),
        suspended_at=moment,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        agreement,
        kind=EventKind.KILL_SWITCH,
        by=actor.username,
        at=moment,
        from_status=agreement.status,
        reason=reason,
        effective_at=moment,
        details={
            "suspension_id": row.id,
            "target": target.value,
            "target_id": resolved,
            "stakeholder_id": row.stakeholder_id,
        },
    )
    audit(
        session,
        action="agreement.suspend",
        actor=actor,
        agreement_id=agreement.id,
        params={
            "suspension_id": row.id,
            "target": target.value,
            "target_id": resolved,
            "stakeholder_id": row.stakeholder_id,
            "reason": reason,
        },
    )
    return row


def require_imposer(session: Session, actor: Principal, suspension: Suspension) -> None:
    """Only an account of the stakeholder that imposed a suspension may lift it alone."""
    if suspension.stakeholder_id is not None and suspension.stakeholder_id == stakeholder_of(
        session, actor
    ):
        return
    imposer = (
        f"stakeholder agency {suspension.stakeholder_id}"
        if suspension.stakeholder_id is not None
        else "no stakeholder (a site account)"
    )
    yours = stakeholder_of(session, actor)
    speaks = f"stakeholder agency {yours}" if yours is not None else "no stakeholder"
    raise Forbidden(
        f"suspension {suspension.id} was imposed by {imposer} ({suspension.suspended_by}); "
        f"only an account of that stakeholder, or a quorum 'resume' decision of the board, "
        f"can lift it. Your account ({actor.username}) speaks for {speaks}",
        code="not_imposing_stakeholder",
        field="suspension_id",
    )


def resume(
    session: Session,
    *,
    actor: Principal,
    suspension_id: int,
    reason: str,
    at: datetime | None = None,
) -> Resumption:
    """Lift one kill-switch suspension from this instant, as its own stakeholder; audited."""
    actor.require(Permission.AGREEMENT_SUSPEND)
    moment = at or utcnow()
    suspension = repo.get_suspension(session, suspension_id)
    if suspension is None:
        raise NotFound(f"suspension {suspension_id} does not exist", field="suspension_id")
    require_imposer(session, actor, suspension)
    actor.require_fresh()
    done = repo.get_resumption(session, suspension.id)
    if done is not None:
        raise Conflict(
            f"suspension {suspension.id} was already lifted at "
            f"{done.resumed_at.isoformat()} by {done.resumed_by}",
            field="suspension_id",
        )
    if moment < suspension.suspended_at:
        raise InvalidInput("at: a resumption cannot precede its suspension", field="at")
    row = _lift(
        session, suspension, by=actor.username, by_id=actor.user_id, reason=reason, at=moment
    )
    agreement = get_agreement(session, agreement_id=suspension.agreement_id)
    audit(
        session,
        action="agreement.resume",
        actor=actor,
        agreement_id=agreement.id,
        params={
            "suspension_id": suspension.id,
            "stakeholder_id": suspension.stakeholder_id,
            "reason": reason,
        },
    )
    return row


def _lift(
    session: Session,
    suspension: Suspension,
    *,
    by: str,
    by_id: int | None,
    reason: str,
    at: datetime,
) -> Resumption:
    """Write the resumption of one suspension and its history event (no audit entry)."""
    row = Resumption(
        suspension_id=suspension.id,
        reason=reason,
        resumed_by=by,
        resumed_by_id=by_id,
        resumed_at=at,
    )
    session.add(row)
    session.flush()
    agreement = get_agreement(session, agreement_id=suspension.agreement_id)
    record_event(
        session,
        agreement,
        kind=EventKind.KILL_SWITCH_RESUMED,
        by=by,
        at=at,
        from_status=agreement.status,
        reason=reason,
        effective_at=at,
        details={
            "suspension_id": suspension.id,
            "target": suspension.target_kind.value,
            "target_id": suspension.target_id,
        },
    )
    return row


def lift_by_decision(
    session: Session, *, agreement_id: int, decided_by: str, at: datetime
) -> list[int]:
    """A quorum 'resume' decision lifts every open kill-switch act under the agreement."""
    lifted = []
    for suspension in repo.open_suspensions(session, agreement_id):
        # A decision effective before the suspension cannot undo it: that act came later.
        moment = max(at, suspension.suspended_at)
        _lift(
            session,
            suspension,
            by=decided_by,
            by_id=None,
            reason=f"governance decision: resume ({decided_by})",
            at=moment,
        )
        lifted.append(suspension.id)
    return lifted


def suspension_read(suspension: Suspension, resumption: Resumption | None) -> SuspensionRead:
    """Shape a kill-switch act for output."""
    return SuspensionRead(
        id=suspension.id,
        agreement_id=suspension.agreement_id,
        target=suspension.target_kind,
        target_id=suspension.target_id,
        reason=suspension.reason,
        suspended_by=suspension.suspended_by,
        stakeholder_id=suspension.stakeholder_id,
        suspended_at=suspension.suspended_at,
        resumed_at=resumption.resumed_at if resumption else None,
        resumed_by=resumption.resumed_by if resumption else None,
        resume_reason=resumption.reason if resumption else None,
    )


def list_suspensions(
    session: Session, *, actor: Principal, agreement_id: int
) -> list[SuspensionRead]:
    """Kill-switch acts recorded under an agreement, oldest first; audited."""
    require_reader(actor)
    agreement = get_agreement(session, agreement_id=agreement_id)
    rows = [suspension_read(s, r) for s, r in repo.list_suspensions(session, agreement.id)]
    audit(session, action="agreement.suspensions", actor=actor, agreement_id=agreement.id)
    return rows

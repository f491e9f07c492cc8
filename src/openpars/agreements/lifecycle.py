"""The lifecycle of an agreement: proposal, governance decisions, and time.

``apply_decision`` is the one call through which governance (stakeholder votes) changes what is
in force; nothing else activates, renews, amends, suspends, resumes or terminates an agreement.
The kill switch (``killswitch``) is separate and immediate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from openpars.access.external import ensure_sets_in_force
from openpars.agreements import killswitch
from openpars.agreements import repository as repo
from openpars.agreements.models import (
    Agreement,
    AgreementStatus,
    AgreementVersion,
    EventKind,
    LifecycleAction,
)
from openpars.agreements.rules import (
    audit,
    check_floor,
    check_overlap,
    check_references,
    record_event,
)
from openpars.agreements.schemas import AgreementDocument
from openpars.agreements.service import add_version, current_version, document_of, get_agreement
from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

S = AgreementStatus
# Stored statuses each decision may start from.
_ALLOWED_FROM: dict[LifecycleAction, frozenset[AgreementStatus]] = {
    LifecycleAction.ADOPT: frozenset({S.DRAFT, S.PENDING_APPROVAL}),
    LifecycleAction.RENEW: frozenset({S.ACTIVE, S.SUSPENDED, S.EXPIRED}),
    LifecycleAction.AMEND: frozenset({S.ACTIVE, S.SUSPENDED}),
    LifecycleAction.SUSPEND: frozenset({S.ACTIVE}),
    LifecycleAction.RESUME: frozenset({S.SUSPENDED}),
    LifecycleAction.TERMINATE: frozenset(
        {S.DRAFT, S.PENDING_APPROVAL, S.ACTIVE, S.SUSPENDED, S.EXPIRED}
    ),
}
_PUTS_IN_FORCE = frozenset({LifecycleAction.ADOPT, LifecycleAction.RENEW, LifecycleAction.AMEND})
_EVENT_OF = {
    LifecycleAction.ADOPT: EventKind.ADOPTED,
    LifecycleAction.RENEW: EventKind.RENEWED,
    LifecycleAction.AMEND: EventKind.AMENDED,
    LifecycleAction.SUSPEND: EventKind.SUSPENDED,
    LifecycleAction.RESUME: EventKind.RESUMED,
    LifecycleAction.TERMINATE: EventKind.TERMINATED,
}


def effective_status(
    agreement: Agreement, version: AgreementVersion, at: datetime
) -> AgreementStatus:
    """The status at an instant: past its expiry an active agreement IS expired, no job needed.

    ``version`` is the version in force (or the current one for a draft). Before the window
    opens an adopted agreement is ``scheduled``: approved, not in force.
    """
    status = agreement.status
    if status not in (S.ACTIVE, S.SUSPENDED):
        return status
    if version.version == agreement.active_version and agreement.in_force_from is not None:
        start, end = agreement.in_force_from, agreement.in_force_until or version.expires_at
    else:
        start, end = version.effective_at, version.expires_at
    if at >= end:
        return S.EXPIRED
    if status is S.SUSPENDED:
        return S.SUSPENDED
    return S.SCHEDULED if at < start else S.ACTIVE


def status_at(session: Session, *, agreement: Agreement, at: datetime) -> AgreementStatus:
    """Effective status with the kill switch applied: a cut-off agreement shows as suspended."""
    version_no = agreement.active_version or agreement.current_version
    version = repo.get_version(session, agreement.id, version_no)
    assert version is not None
    status = effective_status(agreement, version, at)
    if status is S.ACTIVE and repo.agreement_suspended_at(
        session, agreement_id=agreement.id, at=at
    ):
        return S.SUSPENDED
    return status


def propose(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    reason: str = "proposed for approval",
    now: datetime | None = None,
) -> Agreement:
    """Move a draft to pending approval once it passes every check, the floor included."""
    actor.require(Permission.AGREEMENT_MANAGE)
    at = now or utcnow()
    agreement = get_agreement(session, agreement_id=agreement_id, for_update=True)
    if agreement.status is not S.DRAFT:
        raise Conflict(
            f"agreement {agreement.id} is {agreement.status.value}; only a draft can be proposed",
            field="status",
        )
    version = current_version(session, agreement=agreement)
    document = document_of(version)
    check_references(session, document, now=at)
    check_floor(session, document)
    check_overlap(
        session,
        grantee_agency_id=agreement.grantee_agency_id,
        agreement_id=agreement.id,
        effective_at=document.effective_at,
        expires_at=document.expires_at,
    )
    agreement.status = S.PENDING_APPROVAL
    agreement.updated_at = at
    record_event(
        session,
        agreement,
        kind=EventKind.PROPOSED,
        by=actor.username,
        at=at,
        from_status=S.DRAFT,
        reason=reason,
        version=version,
    )
    audit(
        session,
        action="agreement.propose",
        actor=actor,
        agreement_id=agreement.id,
        version=version.version,
        params={"content_hash": version.content_hash},
    )
    return agreement


def apply_decision(
    session: Session,
    *,
    agreement_id: int,
    content_hash: str,
    action: LifecycleAction,
    effective_at: datetime,
    decided_by: str,
    new_expires_at: datetime | None = None,
    audited: bool = True,
    now: datetime | None = None,
) -> Agreement:
    """Apply a governance decision bound to the current version's hash (Conflict otherwise).

    Call it when the decision takes effect. For ``adopt`` the agreement is in force from the
    later of its own effective_at and the decision's; ``renew`` writes a new version expiring
    at ``new_expires_at``; ``amend`` puts the current version in force. ``now`` (the decision's
    instant, read once: the tick's) stamps the row, the event and a renewal's version, and is
    what a renewal's expiry must be later than.
    """
    moment = now or utcnow()
    agreement = get_agreement(session, agreement_id=agreement_id, for_update=True)
    current = current_version(session, agreement=agreement)
    if content_hash != current.content_hash:
        raise Conflict(
            f"content_hash: the decision is for version hash {content_hash[:12]}..., but "
            f"agreement {agreement.id} is now at version {current.version} "
            f"({current.content_hash[:12]}...); a decision on another version is void",
            field="content_hash",
        )
    # A quorum 'resume' also lifts the kill switch, so it applies to an active agreement that
    # a stakeholder has cut off (its status stays active; the suspension rows cut it off).
    kill_switched = action is LifecycleAction.RESUME and bool(
        repo.open_suspensions(session, agreement.id)
    )
    if agreement.status not in _ALLOWED_FROM[action] and not (
        kill_switched and agreement.status is S.ACTIVE
    ):
        raise Conflict(
            f"cannot {action.value} agreement {agreement.id} while it is {agreement.status.value}",
            field="action",
        )
    if effective_at.tzinfo is None:
        raise InvalidInput("effective_at: give a time zone (UTC)", field="effective_at")
    before = agreement.status
    version = _apply(
        session, agreement, current, action, effective_at, decided_by, new_expires_at, moment
    )
    agreement.updated_at = moment
    if action in _PUTS_IN_FORCE:
        # The version's visibility set, so its searches walk only persons it may see.
        session.flush()
        ensure_sets_in_force(session)
    record_event(
        session,
        agreement,
        kind=_EVENT_OF[action],
        by=decided_by,
        at=moment,
        from_status=before,
        effective_at=effective_at,
        version=version,
        reason=f"governance decision: {action.value}",
    )
    if audited:
        audit(
            session,
            action=f"agreement.{action.value}",
            by=decided_by,
            agreement_id=agreement.id,
            version=version.version,
            params={
                "content_hash": version.content_hash,
                "decided_hash": content_hash,
                "effective_at": effective_at.isoformat(),
                "from": before.value,
                "to": agreement.status.value,
            },
        )
    return agreement


def _apply(
    session: Session,
    agreement: Agreement,
    current: AgreementVersion,
    action: LifecycleAction,
    effective_at: datetime,
    decided_by: str,
    new_expires_at: datetime | None,
    now: datetime,
) -> AgreementVersion:
    """Change the agreement row for one decision; returns the version the event refers to."""
    if action is LifecycleAction.SUSPEND:
        agreement.status = S.SUSPENDED
        return current
    if action is LifecycleAction.RESUME:
        agreement.status = S.ACTIVE
        killswitch.lift_by_decision(
            session, agreement_id=agreement.id, decided_by=decided_by, at=effective_at
        )
        return current
    if action is LifecycleAction.TERMINATE:
        agreement.status = S.TERMINATED
        return current
    document = document_of(current)
    check_floor(session, document)
    if action is LifecycleAction.RENEW:
        document = _renewed(document, effective_at, new_expires_at, now)
    elif new_expires_at is not None:
        raise InvalidInput(
            f"new_expires_at: only a renewal sets a new expiry, not '{action.value}'",
            field="new_expires_at",
        )
    if action is LifecycleAction.AMEND and agreement.active_version == current.version:
        raise Conflict("nothing to amend: the current version is already in force", field="action")
    if action is LifecycleAction.ADOPT:
        start = max(document.effective_at, effective_at)
    else:
        start = max(document.effective_at, agreement.in_force_from or document.effective_at)
    if start >= document.expires_at:
        raise InvalidInput(
            f"effective_at: {start.isoformat()} is not before the expiry "
            f"{document.expires_at.isoformat()}",
            field="effective_at",
        )
    check_overlap(
        session,
        grantee_agency_id=agreement.grantee_agency_id,
        agreement_id=agreement.id,
        effective_at=start,
        expires_at=document.expires_at,
    )
    version = current
    if action is LifecycleAction.RENEW:
        version = add_version(
            session,
            agreement,
            document,
            by=decided_by,
            by_id=None,
            reason=f"renewed until {document.expires_at.isoformat()} by governance decision",
            at=now,
        )
    agreement.active_version = version.version
    agreement.in_force_from = start
    agreement.in_force_until = document.expires_at
    if agreement.status in (S.DRAFT, S.PENDING_APPROVAL, S.EXPIRED):
        agreement.status = S.ACTIVE
    return version


def _renewed(
    document: AgreementDocument,
    effective_at: datetime,
    new_expires_at: datetime | None,
    now: datetime,
) -> AgreementDocument:
    """The current document with its new expiry, after checking the expiry makes sense."""
    if new_expires_at is None or new_expires_at.tzinfo is None:
        raise InvalidInput(
            "new_expires_at: a renewal needs the new expiry instant, with its time zone",
            field="new_expires_at",
        )
    if new_expires_at <= document.expires_at:
        raise InvalidInput(
            f"new_expires_at: {new_expires_at.isoformat()} must be later than the current "
            f"expiry {document.expires_at.isoformat()}",
            field="new_expires_at",
        )
    if new_expires_at <= max(effective_at, now):
        raise InvalidInput(
            "new_expires_at: a renewal must expire in the future", field="new_expires_at"
        )
    return document.model_copy(update={"expires_at": new_expires_at})


def expire_due(session: Session, *, at: datetime | None = None, by: str = "system") -> list[int]:
    """Record as expired every agreement whose window has ended (access already ended by time)."""
    moment = at or utcnow()
    expired: list[int] = []
    for agreement in repo.due_to_expire(session, at=moment):
        before = agreement.status
        agreement.status = S.EXPIRED
        agreement.updated_at = moment
        record_event(
            session,
            agreement,
            kind=EventKind.EXPIRED,
            by=by,
            at=moment,
            from_status=before,
            effective_at=agreement.in_force_until,
            reason="reached its expiry without an approved renewal",
        )
        expired.append(agreement.id)
    if expired:
        audit(session, action="agreement.expire", by=by, params={"agreement_ids": expired})
    return expired

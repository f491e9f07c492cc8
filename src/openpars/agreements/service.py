"""Agreements as data: drafts, immutable versions, audited reads; re-exports the grant.

Services flush, never commit. Each act or read made on behalf of a caller leaves exactly one
audit entry here, so the API and the CLI cannot forget it; ``grant_for`` is not audited because
the enforcement point audits the access it is part of.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from openpars.agreements import repository as repo
from openpars.agreements.grants import Grant as Grant
from openpars.agreements.grants import grant_for as grant_for
from openpars.agreements.models import (
    Agreement,
    AgreementStatus,
    AgreementVersion,
    EventKind,
    new_mask_key,
)
from openpars.agreements.rules import (
    audit,
    check_floor,
    check_overlap,
    check_references,
    record_event,
    require_reader,
)
from openpars.agreements.schemas import (
    AgreementDocument,
    AgreementRead,
    EventRead,
    VersionRead,
    sha256_hex,
)
from openpars.db import utcnow
from openpars.errors import Conflict, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.pages import Page

log = logging.getLogger("openpars.agreements")

# ---- drafts and versions --------------------------------------------------------------------


def add_version(
    session: Session,
    agreement: Agreement,
    document: AgreementDocument,
    *,
    by: str,
    by_id: int | None,
    reason: str,
    at: datetime,
) -> AgreementVersion:
    """Append a new immutable version and make it the agreement's current one."""
    content = document.canonical()
    version = AgreementVersion(
        agreement_id=agreement.id,
        version=agreement.current_version + 1,
        content=content,
        content_hash=sha256_hex(content),
        effective_at=document.effective_at,
        expires_at=document.expires_at,
        created_by=by,
        created_by_id=by_id,
        created_at=at,
        reason=reason,
        mask_key=new_mask_key(),
    )
    session.add(version)
    agreement.current_version = version.version
    agreement.name = document.name
    agreement.updated_at = at
    session.flush()
    return version


def create_agreement(
    session: Session,
    *,
    actor: Principal,
    data: AgreementDocument,
    reason: str = "created",
    now: datetime | None = None,
) -> Agreement:
    """Create an agreement as a draft (version 1); the floor is checked when it is proposed."""
    actor.require(Permission.AGREEMENT_MANAGE)
    actor.require_fresh()
    at = now or utcnow()
    check_references(session, data, now=at)
    if repo.get_agreement_by_name(session, data.name) is not None:
        raise Conflict(f"name: an agreement named '{data.name}' already exists", field="name")
    check_overlap(
        session,
        grantee_agency_id=data.grantee_agency_id,
        agreement_id=None,
        effective_at=data.effective_at,
        expires_at=data.expires_at,
    )
    agreement = Agreement(
        name=data.name,
        grantee_agency_id=data.grantee_agency_id,
        status=AgreementStatus.DRAFT,
        current_version=0,
        created_at=at,
        updated_at=at,
    )
    session.add(agreement)
    session.flush()
    version = add_version(
        session, agreement, data, by=actor.username, by_id=actor.user_id, reason=reason, at=at
    )
    record_event(
        session,
        agreement,
        kind=EventKind.CREATED,
        by=actor.username,
        at=at,
        reason=reason,
        version=version,
    )
    audit(
        session,
        action="agreement.create",
        actor=actor,
        agreement_id=agreement.id,
        version=version.version,
        params={"content_hash": version.content_hash},
    )
    return agreement


def update_agreement(
    session: Session,
    *,
    actor: Principal,
    agreement_id: int,
    data: AgreementDocument,
    reason: str,
    now: datetime | None = None,
) -> Agreement:
    """Write a new version; once proposed, it is checked against the floor and needs a vote."""
    actor.require(Permission.AGREEMENT_MANAGE)
    actor.require_fresh()
    at = now or utcnow()
    agreement = get_agreement(session, agreement_id=agreement_id, for_update=True)
    if agreement.status in (AgreementStatus.TERMINATED, AgreementStatus.EXPIRED):
        raise Conflict(
            f"agreement {agreement.id} is {agreement.status.value}; create a new agreement",
            field="status",
        )
    if data.grantee_agency_id != agreement.grantee_agency_id:
        raise InvalidInput(
            "grantee_agency_id: the grantee of an agreement cannot change; create a new agreement",
            field="grantee_agency_id",
        )
    current = current_version(session, agreement=agreement)
    if data.content_hash() == current.content_hash:
        raise Conflict(
            "nothing changed: the content equals the current version",
            code="no_change",
            field="body",
        )
    other = repo.get_agreement_by_name(session, data.name)
    if other is not None and other.id != agreement.id:
        raise Conflict(f"name: an agreement named '{data.name}' already exists", field="name")
    check_references(session, data, now=at)
    if agreement.status is not AgreementStatus.DRAFT:
        check_floor(session, data)
    check_overlap(
        session,
        grantee_agency_id=agreement.grantee_agency_id,
        agreement_id=agreement.id,
        effective_at=data.effective_at,
        expires_at=data.expires_at,
    )
    version = add_version(
        session, agreement, data, by=actor.username, by_id=actor.user_id, reason=reason, at=at
    )
    record_event(
        session,
        agreement,
        kind=EventKind.UPDATED,
        by=actor.username,
        at=at,
        from_status=agreement.status,
        reason=reason,
        version=version,
    )
    audit(
        session,
        action="agreement.update",
        actor=actor,
        agreement_id=agreement.id,
        version=version.version,
        params={"content_hash": version.content_hash, "previous_hash": current.content_hash},
    )
    return agreement


# ---- reads ----------------------------------------------------------------------------------


def get_agreement(session: Session, *, agreement_id: int, for_update: bool = False) -> Agreement:
    """One agreement, or NotFound (not audited: for other services)."""
    agreement = repo.get_agreement(session, agreement_id, for_update=for_update)
    if agreement is None:
        raise NotFound(f"agreement {agreement_id} does not exist", field="agreement_id")
    return agreement


def current_version(session: Session, *, agreement: Agreement) -> AgreementVersion:
    """The latest version of an agreement: the one a proposal binds to by its hash."""
    version = repo.get_version(session, agreement.id, agreement.current_version)
    assert version is not None, "an agreement always has its current version"
    return version


def document_of(version: AgreementVersion) -> AgreementDocument:
    """The validated document of a stored version."""
    return AgreementDocument.model_validate(version.content)


def view(session: Session, agreement: Agreement, *, at: datetime, versions: bool) -> AgreementRead:
    """Shape an agreement for output, with its effective status at ``at``."""
    from openpars.agreements.lifecycle import status_at

    current = current_version(session, agreement=agreement)
    return AgreementRead(
        id=agreement.id,
        name=agreement.name,
        grantee_agency_id=agreement.grantee_agency_id,
        status=agreement.status,
        effective_status=status_at(session, agreement=agreement, at=at),
        current_version=agreement.current_version,
        active_version=agreement.active_version,
        in_force_from=agreement.in_force_from,
        in_force_until=agreement.in_force_until,
        content_hash=current.content_hash,
        created_at=agreement.created_at,
        versions=[VersionRead.model_validate(v) for v in repo.list_versions(session, agreement.id)]
        if versions
        else [],
    )


def show_agreement(session: Session, *, actor: Principal, agreement_id: int) -> AgreementRead:
    """An agreement with every version; audited."""
    require_reader(actor)
    agreement = get_agreement(session, agreement_id=agreement_id)
    result = view(session, agreement, at=utcnow(), versions=True)
    audit(
        session,
        action="agreement.show",
        actor=actor,
        agreement_id=agreement.id,
        version=agreement.current_version,
    )
    return result


def list_agreements(
    session: Session,
    *,
    actor: Principal,
    offset: int = 0,
    limit: int = 50,
    status: AgreementStatus | None = None,
    grantee_agency_id: int | None = None,
) -> Page[AgreementRead]:
    """A page of agreements; audited."""
    require_reader(actor)
    rows, total = repo.list_agreements(
        session, offset=offset, limit=limit, status=status, grantee_agency_id=grantee_agency_id
    )
    at = utcnow()
    items = [view(session, a, at=at, versions=False) for a in rows]
    audit(
        session,
        action="agreement.list",
        actor=actor,
        params={"offset": offset, "limit": limit, "status": status, "total": total},
    )
    return Page[AgreementRead](items=items, total=total, offset=offset, limit=limit)


def timeline(session: Session, *, actor: Principal, agreement_id: int) -> list[EventRead]:
    """Every status change and act on an agreement, oldest first; audited."""
    require_reader(actor)
    agreement = get_agreement(session, agreement_id=agreement_id)
    events = [EventRead.model_validate(e) for e in repo.list_events(session, agreement.id)]
    audit(session, action="agreement.timeline", actor=actor, agreement_id=agreement.id)
    return events

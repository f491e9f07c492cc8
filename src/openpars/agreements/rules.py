"""Shared rules of agreements: audit entries, timeline rows, checks against the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.agreements import repository as repo
from openpars.agreements.floor import check_scope, get_floor
from openpars.agreements.models import (
    Agreement,
    AgreementEvent,
    AgreementStatus,
    AgreementVersion,
    EventKind,
)
from openpars.agreements.schemas import (
    AgreementDocument,
)
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append
from openpars.errors import InvalidInput
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission

# Who may read agreements and their history: managers, stakeholders, auditors.
READ_PERMISSIONS = (
    Permission.AGREEMENT_MANAGE,
    Permission.AGREEMENT_SUSPEND,
    Permission.VOTE,
    Permission.AUDIT_READ,
)


def audit(
    session: Session,
    *,
    action: str,
    actor: Principal | None = None,
    by: str | None = None,
    agreement_id: int | None = None,
    version: int | None = None,
    kind: AuditKind = AuditKind.AGREEMENT,
    params: dict[str, Any] | None = None,
) -> None:
    """Append the one audit entry of an agreements act or read."""
    append(
        session,
        AuditEvent(
            kind=kind,
            action=action,
            user_id=actor.user_id if actor else None,
            username=actor.username if actor else by,
            agency_id=actor.agency_id if actor else None,
            source_ip=actor.source_ip if actor else None,
            params=params or {},
            agreement_id=agreement_id,
            agreement_version=version,
        ),
    )


def require_reader(actor: Principal) -> None:
    """Managers, stakeholders and auditors may read agreements; nobody else."""
    if not any(actor.can(p) for p in READ_PERMISSIONS):
        actor.require(Permission.AGREEMENT_MANAGE)


def record_event(
    session: Session,
    agreement: Agreement,
    *,
    kind: EventKind,
    by: str,
    at: datetime,
    from_status: AgreementStatus | None = None,
    reason: str | None = None,
    effective_at: datetime | None = None,
    version: AgreementVersion | None = None,
    details: dict[str, Any] | None = None,
) -> AgreementEvent:
    """Write one timeline row for an agreement."""
    row = AgreementEvent(
        agreement_id=agreement.id,
        at=at,
        kind=kind,
        from_status=from_status,
        to_status=agreement.status,
        version=version.version if version else agreement.current_version,
        content_hash=version.content_hash if version else None,
        effective_at=effective_at,
        by=by,
        reason=reason,
        details=details or {},
    )
    session.add(row)
    session.flush()
    return row


# ---- validation against the database ------------------------------------------------------


def check_references(session: Session, document: AgreementDocument, *, now: datetime) -> None:
    """Grantee, units, accounts and parties must exist and fit; expiry must be in the future."""
    if document.expires_at <= now:
        raise InvalidInput(
            f"expires_at: {document.expires_at.isoformat()} is in the past; an agreement must "
            "expire in the future",
            field="expires_at",
        )
    grantee = repo.get_agency(session, document.grantee_agency_id)
    if grantee is None or grantee.kind is not AgencyKind.EXTERNAL:
        raise InvalidInput(
            f"grantee_agency_id: agency {document.grantee_agency_id} is not an external agency; "
            "agreements are made with external agencies only",
            field="grantee_agency_id",
        )
    if grantee.parent_id is not None:
        raise InvalidInput(
            f"grantee_agency_id: agency {grantee.id} is a sub-unit; name its top-level agency as "
            "grantee and the unit in grantee_unit_ids",
            field="grantee_agency_id",
        )
    for unit_id in document.grantee_unit_ids:
        if grantee.id not in repo.agency_chain(session, unit_id):
            raise InvalidInput(
                f"grantee_unit_ids: agency {unit_id} is not a unit of the grantee agency "
                f"{grantee.id}",
                field="grantee_unit_ids",
            )
    for user_id in document.grantee_user_ids:
        user = repo.get_user(session, user_id)
        if user is None or grantee.id not in repo.agency_chain(session, user.agency_id):
            raise InvalidInput(
                f"grantee_user_ids: user {user_id} is not an account of the grantee agency "
                f"{grantee.id}",
                field="grantee_user_ids",
            )
    for party_id in document.parties:
        party = repo.get_agency(session, party_id)
        if party is None or party.kind is AgencyKind.EXTERNAL:
            raise InvalidInput(
                f"parties: agency {party_id} is not a data owner of this site",
                field="parties",
            )


def check_overlap(
    session: Session,
    *,
    grantee_agency_id: int,
    agreement_id: int | None,
    effective_at: datetime,
    expires_at: datetime,
) -> None:
    """At most one agreement per grantee may be in force at any instant."""
    # Two concurrent changes for one grantee could each miss the other's window otherwise.
    repo.lock_grantee(session, grantee_agency_id)
    for other, version in repo.windows_of_grantee(
        session, grantee_agency_id=grantee_agency_id, exclude_agreement_id=agreement_id
    ):
        if effective_at < version.expires_at and version.effective_at < expires_at:
            raise InvalidInput(
                f"effective_at: the period {effective_at.isoformat()} to {expires_at.isoformat()} "
                f"overlaps agreement {other.id} ('{other.name}', {other.status.value}, "
                f"{version.effective_at.isoformat()} to {version.expires_at.isoformat()}); a "
                "grantee may have only one agreement in force at a time",
                field="effective_at",
                details={"overlaps_agreement_id": other.id},
            )


def check_floor(session: Session, document: AgreementDocument) -> None:
    """Refuse a scope that crosses the site floor in force."""
    check_scope(document.scope, get_floor(session))

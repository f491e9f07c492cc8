"""Builders for agreement tests: scopes, documents, sub-units and activated agreements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openpars.agreements import lifecycle, service
from openpars.agreements.floor import SiteFloor, store_floor
from openpars.agreements.models import Agreement, LifecycleAction
from openpars.agreements.schemas import AgreementDocument
from openpars.audit.models import AuditEntry
from openpars.db import utcnow
from openpars.identity import service as identity
from openpars.identity.principal import SYSTEM, Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.identity.schemas import AgencyCreate, UserCreate
from tests.factories import World

ICE = "Immigration and Customs Enforcement"
FBI = "Federal Bureau of Investigation"
OWNERS = ("District Attorney's Office", "First Judicial District", "City of Philadelphia")


def scope_dict(**overrides: Any) -> dict[str, Any]:
    """A scope that stays above the default floor: arrestees only, a few fields."""
    scope: dict[str, Any] = {
        "roles": ["arrestee"],
        "person_fields": {"family_name": "visible", "birth_date": "year_only", "sid": "hash"},
        "arrest_fields": {"otn": "visible", "state": "visible", "docket_number": "show_last_4"},
        "arrest_states": ["charged", "arraigned"],
        "grades": ["F1", "F2", "F3"],
        "exclude_juveniles": True,
        "include_sealed": False,
        "purposes": [{"purpose": "criminal-investigation", "case_reference_required": True}],
        "limits": {"max_results": 25},
    }
    scope.update(overrides)
    return scope


def document_dict(world: World, **overrides: Any) -> dict[str, Any]:
    """A valid agreement document for ICE, whole agency, in force for a year from yesterday."""
    now = utcnow()
    doc: dict[str, Any] = {
        "name": "ICE data-use agreement",
        "grantee_agency_id": world.agencies[ICE],
        "all_units": True,
        "legal_basis": "8 U.S.C. 1357(g); yearly data-use agreement",
        "fee": {"amount": "5500", "currency": "USD", "period": "yearly"},
        "terms": "Arrestees only. No onward dissemination.",
        "parties": [world.agencies[name] for name in OWNERS],
        "scope": scope_dict(),
        "effective_at": (now - timedelta(days=1)).isoformat(),
        "expires_at": (now + timedelta(days=365)).isoformat(),
    }
    doc.update(overrides)
    return doc


def document(world: World, **overrides: Any) -> AgreementDocument:
    """The validated document."""
    return AgreementDocument.model_validate(document_dict(world, **overrides))


@dataclass
class Unit:
    """A sub-unit of an external agency with one user."""

    agency_id: int
    user_id: int
    principal: Principal


def add_unit(session: Session, world: World, name: str, *, parent: str = ICE) -> Unit:
    """Create a sub-unit of an external agency and one query user in it."""
    agency = identity.create_agency(
        session,
        actor=SYSTEM,
        data=AgencyCreate(name=name, kind=AgencyKind.EXTERNAL, parent_id=world.agencies[parent]),
    )
    username = name.lower().replace(" ", "-")[:40]
    user = identity.create_user(
        session,
        actor=SYSTEM,
        data=UserCreate(
            username=username,
            display_name=name,
            agency_id=agency.id,
            roles=[Role.EXTERNAL_QUERY],
        ),
    )
    return Unit(agency.id, user.id, identity.principal_for(session, user))


def create(session: Session, world: World, **overrides: Any) -> Agreement:
    """Create a draft agreement as the admin."""
    return service.create_agreement(
        session, actor=world.principals["agreements"], data=document(world, **overrides)
    )


def activate(
    session: Session, agreement: Agreement, *, effective_at: datetime | None = None
) -> Agreement:
    """Propose and adopt an agreement as a governance decision would."""
    admin_actor = SYSTEM
    lifecycle.propose(session, actor=admin_actor, agreement_id=agreement.id)
    current = service.current_version(session, agreement=agreement)
    return lifecycle.apply_decision(
        session,
        agreement_id=agreement.id,
        content_hash=current.content_hash,
        action=LifecycleAction.ADOPT,
        effective_at=effective_at or utcnow() - timedelta(days=1),
        decided_by="board",
    )


def audit_count(session: Session) -> int:
    """How many audit entries exist."""
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def decided_floor(session: Session, floor: SiteFloor, reason: str) -> None:
    """Put a floor in force as if the board had decided it (tests of what a floor admits).

    Loosening needs the board's quorum (tests/governance/test_floor_proposals.py proves that
    path); tests about what a looser floor then lets through take the decision as given.
    """
    store_floor(
        session, floor=floor, changed_by="test: board decision", changed_by_id=None, reason=reason
    )
